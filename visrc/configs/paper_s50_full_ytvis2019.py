# paper_s50_full.py on YouTube-VIS 2019: the same model (C = 40, K = 59) and schedule; what changes
# is the class list and what follows from it: the category tables' 2019 column for COCO and
# OpenImages (e.g. COCO car -> sedan, COCO frisbee and bird -> auxiliary), the OpenImages subset
# (`python -m visrc.data.openimages --version 2019 ...`), and the 2019 file names
# (train.json / valid.json beside train/ and valid/). data_root layout otherwise as
# paper_s50_full.py's header.
_base_ = './paper_s50_full.py'

dataset_version = '2019'
classes = ('person', 'giant_panda', 'lizard', 'parrot', 'skateboard', 'sedan', 'ape', 'dog',
           'snake', 'monkey', 'hand', 'rabbit', 'duck', 'cat', 'cow', 'fish', 'train', 'horse',
           'turtle', 'bear', 'motorbike', 'giraffe', 'leopard', 'fox', 'deer', 'owl', 'surfboard',
           'airplane', 'truck', 'zebra', 'tiger', 'elephant', 'snowboard', 'boat', 'shark',
           'mouse', 'frog', 'eagle', 'earless_seal', 'tennis_racket')

train_dataloader = dict(dataset=dict(datasets=[
    dict(type='YTVISRawDataset', data_root={{_base_.data_root}}, dataset_version=dataset_version,
         metainfo=dict(classes=classes),
         ann_file='train.json', data_prefix=dict(img_path='train/JPEGImages'),
         pipeline={{_base_.train_pipeline}}),
    dict(type='MSDImageDataset', data_root={{_base_.data_root}}, metainfo=dict(classes=classes),
         ann_file='coco/annotations/instances_train2017.json',
         data_prefix=dict(img_path='coco/train2017'),
         source='coco', category_table=dataset_version, num_aux={{_base_.num_aux}},
         pipeline={{_base_.train_pipeline}}),
    dict(type='MSDImageDataset', data_root={{_base_.data_root}}, metainfo=dict(classes=classes),
         ann_file='openimages/annotations/openimages_ytvis2019.json',
         data_prefix=dict(img_path='openimages/train'),
         source='openimages', category_table=dataset_version, num_aux={{_base_.num_aux}},
         unmatched='ignore', require_target=True, id_offset=10**8,
         pipeline={{_base_.train_pipeline}}),
]))
test_split = dict(ann_file='valid.json', img_prefix='valid/JPEGImages')
