"""The inference driver: an ONNX Runtime model run under layouts (processes x threads x CPUs
x memory node), measured honestly, checked that the layout held, and explained.

    layout.py    presets and explicit layouts, validated against the topology
    models.py    .onnx files, built-in generated models, models shipped in PyPI packages
    worker.py    one instance: places itself, builds its session, measures
    driver.py    starts the workers together, collects results, survives failures
    telemetry.py counters from /proc and /sys over the measured window
    diagnose.py  plain-word reasons from the telemetry
    infer.py     layouts compared (rounds, intervals, verdicts) and the sweep
"""
