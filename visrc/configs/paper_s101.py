# The paper's model with a ResNeSt-101 backbone: everything as paper_s50.py except the backbone.
_base_ = './paper_s50.py'

model = dict(detector=dict(backbone=dict(stem_channels=128, depth=101)))
