"""Board-side driver of the generated accelerators and the simulated board it also runs on.

- :mod:`deploy.driver`     ``Accelerator(bitfile)`` on a PYNQ board, ``Accelerator.simulated(build_dir)``
                           on the simulated one: the same code path (pynq's Overlay and DMA driver)
- :mod:`deploy.cli`        FINN's ``driver.py --exec_mode execute|throughput_test [--simulate BUILD_DIR]``
- :mod:`deploy.interface`  the accelerator's interface record (``interface.json``, in ``accel.json``)
- :mod:`deploy.handoff`    what the driver checks in a .bit/.hwh before pynq loads it
- :mod:`deploy.packing`    the stream format: image validation, packing, label unpacking
- :mod:`deploy.config`     ``accel.json``: what the driver needs to know about one accelerator
- :mod:`deploy.sim_board`  the simulated Zynq (``pynq.Device``, DDR, clocks, AXI DMA per PG021)
- :mod:`deploy.rtl_cosim`  the build's RTL in one persistent Verilator process behind that DMA
- :mod:`deploy.samples`    test images for notebooks and validation
- ``python -m deploy.validate --build DIR``  accuracy on a dataset's test split

Nothing here imports pynq at import time; the board transport (and the simulated board)
import it when they are made.
"""
