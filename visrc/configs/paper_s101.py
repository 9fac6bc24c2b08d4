# The paper's baseline (Table 1 row 1's model) with a ResNeSt-101 backbone: everything as paper_s50.py
# except the backbone. The full system: paper_s101_full.py.
_base_ = './paper_s50.py'

model = dict(detector=dict(backbone=dict(stem_channels=128, depth=101)))
