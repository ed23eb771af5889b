"""Board-side driver of the generated accelerators and its host simulation backend.

- :mod:`deploy.driver`        ``Accelerator(bitfile)`` on a PYNQ board, ``Accelerator.simulated(build_dir)``
- :mod:`deploy.packing`       the stream format: image validation, packing, label unpacking
- :mod:`deploy.config`        ``accel.json``: what the driver needs to know about one accelerator
- :mod:`deploy.sim_transport` the Verilator transport behind ``Accelerator.simulated``
- :mod:`deploy.samples`       test images for notebooks and validation
- ``python -m deploy.validate --build DIR``  accuracy on a dataset's test split

Nothing here imports pynq at import time; the board transport imports it when it is made.
"""
