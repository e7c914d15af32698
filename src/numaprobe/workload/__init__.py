"""The inference driver: a model run under layouts (processes x threads x CPUs x memory node)
on an engine (ONNX Runtime, OpenVINO) at a precision, measured honestly, checked that the
layout held, and explained.

    layout.py    presets and explicit layouts, validated against the topology; every layout
                 under every engine x precision (combine)
    engines/     one module per engine: build with explicit threads, streams and CPUs, run,
                 report what resolved; precision limits and accuracy against f32
    models.py    .onnx files, built-in generated models, models shipped in PyPI packages
    worker.py    one instance: places itself, builds its engine, measures
    driver.py    starts the workers together, collects results, survives failures
    telemetry.py counters from /proc and /sys over the measured window
    diagnose.py  plain-word reasons from the telemetry
    infer.py     layouts compared (rounds, intervals, verdicts) and the sweep
"""
