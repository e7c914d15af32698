# Builds the consumer against the installed numaprobe: its .pxd files are found on sys.path,
# its header through numaprobe.get_include().
from Cython.Build import cythonize
from setuptools import Extension, setup

import numaprobe

setup(name="numaprobe-consumer", ext_modules=cythonize(
    [Extension("consumer", ["consumer.pyx"], include_dirs=[numaprobe.get_include()])],
    language_level=3))
