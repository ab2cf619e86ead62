# Source of the bundle's deploy.ipynb (lowbit_hdl.flow.deploy turns it into the notebook):
# every "# %%" line starts a code cell, "# %% [markdown]" a markdown cell whose lines are
# comments. The cells call run.py of the same bundle, so the notebook and the script share
# their code. Lines before the first marker (these) are not part of the notebook.

# %% [markdown]
# # The accelerator on PYNQ
#
# Loads the bitstream, classifies the sample images that came with the bundle and reports
# accuracy, agreement with the golden model, timing and power: the steps of `run.py`, one
# cell at a time.

# %%
import run

acc = run.open_accelerator()
print(acc.layout.network, acc.layout.input, acc.layout.output, sep="\n")

# %%
images, labels, expected = run.load_samples()
print(images.shape)

# %%
res = acc.classify(images)
status = run.report(res, labels, expected)

# %% [markdown]
# Single-image latency (one DMA round trip per image):

# %%
one = acc.classify(images[:16], batch=1)
print(one.timing.summary())

# %%
acc.close()
