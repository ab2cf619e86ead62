# lowbit-hdl: Vivado project, PYNQ-Z2 block design and bitstream for one network.
# Run from any folder with
#   vivado -mode batch -source vivado/build.tcl
# A hybrid design (config.tcl sets hybrid 1) also gets the accelerator's AXI4-Lite control
# port on GP0 (at control_offset) and its AXI4 weight read masters m_axi_w<k> on the HP ports
# listed in weight_hp (HP0 is shared with the DMA through axi_smc; HP1..HP3 each get their
# own SmartConnect axi_smc_hp<h>).
# The build's settings (network, part, clock, stream widths, IP versions, RTL files) are in
# config.tcl next to this script, which lowbit-hdl generates for each build; this script is
# the same for every network. Produces <out>/<net>.bit and <out>/<net>.hwh (the pair
# pynq.Overlay loads) and utilisation/timing reports in vivado/reports/.

set script_dir [file dirname [file normalize [info script]]]
set out_dir [file dirname $script_dir]
# net_name proj_name bd_name part board_pattern fclk_mhz in_width out_width mm2s_mm_width
# s2mm_mm_width jobs accel_module rtl_sources tested_version ip_name(ps|dma|accelerator)
# ip_vlnv(<ip>); hybrid designs only: hybrid hp_ports weight_hp control_offset control_range
source [file join $script_dir config.tcl]
if {![info exists hybrid]} { set hybrid 0 }
set proj_dir [file join $script_dir $proj_name]
if {[info exists ::env(LOWBIT_VIVADO_JOBS)]} { set jobs $::env(LOWBIT_VIVADO_JOBS) }
set rtl_files [list]
foreach f $rtl_sources { lappend rtl_files [file join $out_dir $f] }
set ps $ip_name(ps)
set dma $ip_name(dma)
set acc $ip_name(accelerator)
# hybrid: the HP ports the weight masters use, and for each the SmartConnect joining its
# masters (HP0: the DMA's axi_smc, whose S00/S01 are the DMA's) and its next free slave port
set periph_mi 1
set hp_smc(0) axi_smc
set smc_si(0) 2  ;# the DMA's two memory masters (S00, S01)
set hp_used [list]
if {$hybrid} {
    set periph_mi 2
    set hp_used [lsort -unique -integer [concat 0 $weight_hp]]
    foreach h $hp_used {
        if {$h > 0} { set hp_smc($h) axi_smc_hp$h; set smc_si($h) 0 }
    }
    set k 0
    foreach h $weight_hp {
        set weight_smc_port($k) [format S%02d_AXI $smc_si($h)]
        incr smc_si($h)
        incr k
    }
}

if {[string first $tested_version [version -short]] != 0} {
    puts "WARNING: written for Vivado $tested_version, running [version -short]: IP versions\
 (ip_vlnv in config.tcl) may need updating (see docs/build.md)"
}
foreach f $rtl_files {
    if {![file exists $f]} { error "lowbit-hdl: missing RTL file $f" }
}

# ---- project ---------------------------------------------------------------------------
create_project $proj_name $proj_dir -part $part -force
set boards [get_board_parts -quiet -latest_file_version $board_pattern]
set use_board [expr {[llength $boards] > 0}]
if {$use_board} {
    set_property board_part [lindex $boards 0] [current_project]
} else {
    puts "INFO: PYNQ-Z2 board files not installed: configuring the PS by hand"
}
add_files -norecurse $rtl_files
update_compile_order -fileset sources_1

# ---- block design ----------------------------------------------------------------------
create_bd_design $bd_name

create_bd_cell -type ip -vlnv $ip_vlnv(processing_system7) $ps
apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \
    -config [list make_external "FIXED_IO, DDR" apply_board_preset $use_board \
             Master Disable Slave Disable] [get_bd_cells $ps]
if {!$use_board} {
    # PYNQ-Z2: 16-bit DDR3 MT41K256M16 RE-125, 50 MHz PS clock, UART0 on MIO 14..15
    set_property -dict [list \
        CONFIG.PCW_CRYSTAL_PERIPHERAL_FREQMHZ {50} \
        CONFIG.PCW_UIPARAM_DDR_PARTNO {MT41K256M16 RE-125} \
        CONFIG.PCW_UIPARAM_DDR_BUS_WIDTH {16 Bit} \
        CONFIG.PCW_UART0_PERIPHERAL_ENABLE {1} \
        CONFIG.PCW_UART0_UART0_IO {MIO 14 .. 15} \
    ] [get_bd_cells $ps]
}
set_property -dict [list \
    CONFIG.PCW_USE_M_AXI_GP0 {1} \
    CONFIG.PCW_USE_S_AXI_HP0 {1} \
    CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64} \
    CONFIG.PCW_EN_CLK0_PORT {1} \
    CONFIG.PCW_EN_RST0_PORT {1} \
    CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ $fclk_mhz \
] [get_bd_cells $ps]
if {$hybrid && [llength $hp_used] > 1} {
    # the weight masters' HP ports besides HP0, 64 bit like HP0
    set hp_props [list]
    foreach h [lrange $hp_used 1 end] {
        lappend hp_props CONFIG.PCW_USE_S_AXI_HP$h {1} CONFIG.PCW_S_AXI_HP${h}_DATA_WIDTH {64}
    }
    set_property -dict $hp_props [get_bd_cells $ps]
}

create_bd_cell -type module -reference $accel_module $acc

create_bd_cell -type ip -vlnv $ip_vlnv(axi_dma) $dma
set_property -dict [list \
    CONFIG.c_include_sg {0} \
    CONFIG.c_sg_include_stscntrl_strm {0} \
    CONFIG.c_sg_length_width {26} \
    CONFIG.c_include_mm2s {1} \
    CONFIG.c_include_s2mm {1} \
    CONFIG.c_m_axis_mm2s_tdata_width $in_width \
    CONFIG.c_m_axi_mm2s_data_width $mm2s_mm_width \
    CONFIG.c_s_axis_s2mm_tdata_width $out_width \
    CONFIG.c_m_axi_s2mm_data_width $s2mm_mm_width \
    CONFIG.c_mm2s_burst_size {16} \
    CONFIG.c_s2mm_burst_size {16} \
] [get_bd_cells $dma]

create_bd_cell -type ip -vlnv $ip_vlnv(proc_sys_reset) rst_ps7_0
create_bd_cell -type ip -vlnv $ip_vlnv(axi_interconnect) ps7_0_axi_periph
set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI $periph_mi] \
    [get_bd_cells ps7_0_axi_periph]
foreach h [concat 0 [lrange $hp_used 1 end]] {
    create_bd_cell -type ip -vlnv $ip_vlnv(smartconnect) $hp_smc($h)
    set_property -dict [list CONFIG.NUM_SI $smc_si($h) CONFIG.NUM_MI {1}] \
        [get_bd_cells $hp_smc($h)]
}

# control: GP0 -> interconnect -> DMA registers
connect_bd_intf_net [get_bd_intf_pins $ps/M_AXI_GP0] \
    [get_bd_intf_pins ps7_0_axi_periph/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins ps7_0_axi_periph/M00_AXI] \
    [get_bd_intf_pins $dma/S_AXI_LITE]
# data: DMA memory masters -> SmartConnect -> HP0
connect_bd_intf_net [get_bd_intf_pins $dma/M_AXI_MM2S] [get_bd_intf_pins axi_smc/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins $dma/M_AXI_S2MM] [get_bd_intf_pins axi_smc/S01_AXI]
connect_bd_intf_net [get_bd_intf_pins axi_smc/M00_AXI] [get_bd_intf_pins $ps/S_AXI_HP0]
# streams: MM2S -> accelerator -> S2MM
connect_bd_intf_net [get_bd_intf_pins $dma/M_AXIS_MM2S] [get_bd_intf_pins $acc/s_axis]
connect_bd_intf_net [get_bd_intf_pins $acc/m_axis] [get_bd_intf_pins $dma/S_AXIS_S2MM]
if {$hybrid} {
    # control: GP0 -> interconnect -> accelerator registers
    connect_bd_intf_net [get_bd_intf_pins ps7_0_axi_periph/M01_AXI] \
        [get_bd_intf_pins $acc/s_axi_control]
    # weights: master k -> SmartConnect of its HP port -> HP port
    set k 0
    foreach h $weight_hp {
        connect_bd_intf_net [get_bd_intf_pins $acc/m_axi_w$k] \
            [get_bd_intf_pins $hp_smc($h)/$weight_smc_port($k)]
        incr k
    }
    foreach h [lrange $hp_used 1 end] {
        connect_bd_intf_net [get_bd_intf_pins $hp_smc($h)/M00_AXI] \
            [get_bd_intf_pins $ps/S_AXI_HP$h]
    }
}

# one clock: FCLK_CLK0
set clk_pins [list [get_bd_pins $ps/FCLK_CLK0] \
    [get_bd_pins $ps/M_AXI_GP0_ACLK] \
    [get_bd_pins $ps/S_AXI_HP0_ACLK] \
    [get_bd_pins rst_ps7_0/slowest_sync_clk] \
    [get_bd_pins ps7_0_axi_periph/ACLK] \
    [get_bd_pins ps7_0_axi_periph/S00_ACLK] \
    [get_bd_pins ps7_0_axi_periph/M00_ACLK] \
    [get_bd_pins axi_smc/aclk] \
    [get_bd_pins $dma/s_axi_lite_aclk] \
    [get_bd_pins $dma/m_axi_mm2s_aclk] \
    [get_bd_pins $dma/m_axi_s2mm_aclk] \
    [get_bd_pins $acc/ap_clk]]
set rst_pins [list]
if {$hybrid} {
    lappend clk_pins [get_bd_pins ps7_0_axi_periph/M01_ACLK]
    lappend rst_pins [get_bd_pins ps7_0_axi_periph/M01_ARESETN]
    foreach h [lrange $hp_used 1 end] {
        lappend clk_pins [get_bd_pins $ps/S_AXI_HP${h}_ACLK] [get_bd_pins $hp_smc($h)/aclk]
        lappend rst_pins [get_bd_pins $hp_smc($h)/aresetn]
    }
}
connect_bd_net {*}$clk_pins
# resets
connect_bd_net [get_bd_pins $ps/FCLK_RESET0_N] [get_bd_pins rst_ps7_0/ext_reset_in]
connect_bd_net [get_bd_pins rst_ps7_0/interconnect_aresetn] \
    [get_bd_pins ps7_0_axi_periph/ARESETN]
connect_bd_net [get_bd_pins rst_ps7_0/peripheral_aresetn] \
    [get_bd_pins ps7_0_axi_periph/S00_ARESETN] \
    [get_bd_pins ps7_0_axi_periph/M00_ARESETN] \
    [get_bd_pins axi_smc/aresetn] \
    [get_bd_pins $dma/axi_resetn] \
    [get_bd_pins $acc/ap_rst_n] \
    {*}$rst_pins

if {$hybrid} {
    # the control registers at a fixed place in GP0's window (the runtime finds them by the
    # cell name in the .hwh); each weight master sees the DDR through its HP port
    assign_bd_address -offset $control_offset -range $control_range \
        -target_address_space [get_bd_addr_spaces $ps/Data] \
        [get_bd_addr_segs $acc/s_axi_control/reg0]
    set k 0
    foreach h $weight_hp {
        assign_bd_address -target_address_space [get_bd_addr_spaces $acc/m_axi_w$k] \
            [get_bd_addr_segs $ps/S_AXI_HP$h/HP${h}_DDR_LOWOCM]
        incr k
    }
}
# everything else (the DMA's registers and memory masters) where Vivado puts it
assign_bd_address
regenerate_bd_layout
validate_bd_design
save_bd_design

set bd_file [get_files $bd_name.bd]
generate_target all $bd_file
set wrapper [make_wrapper -files $bd_file -top]
add_files -norecurse $wrapper
set_property top ${bd_name}_wrapper [current_fileset]
update_compile_order -fileset sources_1

# ---- synthesis, implementation, bitstream ----------------------------------------------
launch_runs synth_1 -jobs $jobs
wait_on_run synth_1
if {[get_property PROGRESS [get_runs synth_1]] ne "100%"} {
    error "lowbit-hdl: synthesis failed (see $proj_dir/$proj_name.runs/synth_1/runme.log)"
}
launch_runs impl_1 -to_step write_bitstream -jobs $jobs
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    error "lowbit-hdl: implementation failed (see $proj_dir/$proj_name.runs/impl_1/runme.log)"
}

set report_dir [file join $script_dir reports]
file mkdir $report_dir
open_run impl_1
report_utilization -file [file join $report_dir utilization.rpt]
report_utilization -hierarchical -file [file join $report_dir utilization_hier.rpt]
report_timing_summary -file [file join $report_dir timing.rpt]
set wns [get_property STATS.WNS [get_runs impl_1]]
if {$wns ne "" && $wns < 0} {
    puts "WARNING: timing not met at $fclk_mhz MHz (WNS $wns ns): lower --clock-mhz"
}

# ---- bitstream + hardware handoff for PYNQ ---------------------------------------------
set bit [file join $proj_dir $proj_name.runs impl_1 ${bd_name}_wrapper.bit]
set hwh [lindex [concat \
    [glob -nocomplain [file join $proj_dir $proj_name.gen sources_1 bd $bd_name hw_handoff \
        $bd_name.hwh]] \
    [glob -nocomplain [file join $proj_dir $proj_name.srcs sources_1 bd $bd_name hw_handoff \
        $bd_name.hwh]]] 0]
if {![file exists $bit]} { error "lowbit-hdl: bitstream $bit was not produced" }
if {$hwh eq ""} { error "lowbit-hdl: hardware handoff $bd_name.hwh was not produced" }
file copy -force $bit [file join $out_dir $net_name.bit]
file copy -force $hwh [file join $out_dir $net_name.hwh]
puts "lowbit-hdl: wrote [file join $out_dir $net_name.bit] and\
 [file join $out_dir $net_name.hwh]"
close_project
