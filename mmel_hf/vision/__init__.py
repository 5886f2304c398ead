"""MMEL for images: views generated on the fly, the paper's CIFAR ResNets, data loading and schedules."""
