# lowbit-hdl: Vivado command recorder for tclsh dry runs (lowbit_hdl.flow.tclcheck).
# Set before sourcing: ::lowbit_vivado_cmds (the Vivado commands the flow may call) and
# ::lowbit_vivado_version (what `version` answers). Environment: LOWBIT_TCL_LOG (the log
# file, one Tcl list per call) and LOWBIT_TCL_BOARDS (what get_board_parts answers).
set ::lowbit_log [open $::env(LOWBIT_TCL_LOG) w]
set ::lowbit_boards $::env(LOWBIT_TCL_BOARDS)
proc ::lowbit_record {name argv} {
    puts $::lowbit_log [list $name {*}$argv]
    flush $::lowbit_log
}
proc version {args} { ::lowbit_record version $args; return $::lowbit_vivado_version }
proc create_bd_cell {args} { ::lowbit_record create_bd_cell $args; return [lindex $args end] }
proc get_bd_cells {args} { ::lowbit_record get_bd_cells $args; return [lindex $args end] }
proc get_bd_pins {args} { ::lowbit_record get_bd_pins $args; return [lindex $args end] }
proc get_bd_intf_pins {args} {
    ::lowbit_record get_bd_intf_pins $args; return [lindex $args end]
}
proc get_bd_addr_spaces {args} {
    ::lowbit_record get_bd_addr_spaces $args; return [lindex $args end]
}
proc get_bd_addr_segs {args} {
    ::lowbit_record get_bd_addr_segs $args; return [lindex $args end]
}
proc get_board_parts {args} { ::lowbit_record get_board_parts $args; return $::lowbit_boards }
proc get_files {args} { ::lowbit_record get_files $args; return [lindex $args end] }
proc get_runs {args} { ::lowbit_record get_runs $args; return [lindex $args end] }
proc current_project {args} { ::lowbit_record current_project $args; return project }
proc current_fileset {args} { ::lowbit_record current_fileset $args; return sources_1 }
proc make_wrapper {args} {
    ::lowbit_record make_wrapper $args
    return [file join $::proj_dir hdl ${::bd_name}_wrapper.v]
}
proc get_property {args} {
    ::lowbit_record get_property $args
    switch -- [lindex $args 0] {
        PROGRESS { return "100%" }
        STATS.WNS { return "0.250" }
        default { return "" }
    }
}
proc wait_on_run {args} {
    ::lowbit_record wait_on_run $args
    if {[lindex $args end] eq "impl_1"} {
        set d [file join $::proj_dir $::proj_name.runs impl_1]
        file mkdir $d
        set f [open [file join $d ${::bd_name}_wrapper.bit] w]; puts $f "bit"; close $f
        set d [file join $::proj_dir $::proj_name.gen sources_1 bd $::bd_name hw_handoff]
        file mkdir $d
        set f [open [file join $d $::bd_name.hwh] w]; puts $f "<hwh/>"; close $f
    }
}
rename unknown ::lowbit_tcl_unknown
proc unknown {cmd args} {
    if {[lsearch -exact $::lowbit_vivado_cmds $cmd] >= 0} {
        ::lowbit_record $cmd $args
        return ""
    }
    error "invalid command name \"$cmd\" (not a Vivado command this flow uses)"
}
