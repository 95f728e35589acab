"""Bounds on user-given sizes, shared by the CLI, the checkpoint schema and the trace schema.

Each bound keeps a run finite and its memory plausible on one machine; a value outside it is
refused with a one-line error instead of overflowing, running without end or exhausting memory.
The numbers are generous: every shipped network and every run in ``benchmarks/`` is far inside.
"""

from __future__ import annotations

#: Seeds are fed to numpy's legacy seeding, which takes 32-bit unsigned values.
MAX_SEED = 2**32 - 1
#: SNN timesteps: the lineage trains at <= 2,500 (paper.md §2.5); 10,000 leaves room.
MAX_TIMESTEPS = 10_000
#: Samples one trace or estimate may hold (the largest shipped test set is CIFAR's 10,000).
MAX_SAMPLES = 10_000_000
#: Channels or features of one layer (VGG16 has 4,096; 65,536 is 16x that).
MAX_WIDTH = 65_536
#: Parameters of a whole network (VGG16/CIFAR has 3.99e7; 2e9 is 8 GB of float32).
MAX_PARAMS = 2_000_000_000
#: Input side length and channels (ImageNet crops are 224).
MAX_INPUT_SIDE = 4_096
MAX_INPUT_CHANNELS = 4_096
#: Gaussian input-noise standard deviation (inputs are normalised: sigma 100 is pure noise).
MAX_NOISE_STD = 100.0
#: Training epochs of one stage.
MAX_EPOCHS = 100_000
#: Mini-batch size.
MAX_BATCH_SIZE = 1_000_000
#: Nesting depth of a YAML or JSON document snnsim reads (configs and trace metadata are <= 6).
MAX_DOCUMENT_DEPTH = 32
#: Length of an ``extends:`` chain of hardware configs.
MAX_EXTENDS_DEPTH = 16
#: Nodes of one network graph (ResNet-19 has 70; VGG16 52).
MAX_GRAPH_NODES = 4_096
#: Neurons (values) of one forward pass, all nodes together (VGG16 on 224x224 ImageNet has
#: 1.5e7): bounds the memory of a single sample before anything runs.
MAX_VALUES = 2_000_000_000
