"""Brevitas binarized networks for the accelerator compiler.

* :mod:`quant_models.zoo`: ``names()``, ``get(name, pretrained=True)`` (FTBNN, Group-Net,
  BNN-PYNQ peers), each model tagged with ``.dataset``, ``.input_shape`` and ``.trained``.
* :mod:`quant_models.data`: ``load(dataset, split)`` for mnist, digits and cifar10.
* :mod:`quant_models.train`: ``python -m quant_models.train --model NAME ...``.
* :mod:`quant_models.ftbnn`, :mod:`quant_models.groupnet`: the two model families,
  written to the compiler's hardware rules (see DESIGN.md).
"""
