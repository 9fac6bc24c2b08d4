# The paper's full system (Table 1 row 5's components) with a ResNeSt-101 backbone, a Table 2
# member: everything as paper_s50_full.py (its header has the data layout and the commands) except
# the backbone's depth and stem. C5 has 2048 channels, as ResNeSt-50's.
_base_ = './paper_s50_full.py'

model = dict(detector=dict(backbone=dict(stem_channels=128, depth=101)))
