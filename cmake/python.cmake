# The Python package (pyproject.toml, python/backprop): when scikit-build-core
# runs this project (SKBUILD is set), the shared library is installed into
# the package directory under one plain name, libbackprop.so, which
# python/backprop/_capi.py loads with ctypes. The file is the build tree's,
# so it keeps the build's run path to the libraries it links (MPI, CUDA).
# Only the "python" component is installed into a wheel.
if(SKBUILD)
  install(FILES $<TARGET_FILE:backprop> DESTINATION backprop RENAME libbackprop.so
          COMPONENT python)
endif()
