# What `cmake --install` puts under the prefix, relocatable as a whole
# (tests/check_package.sh installs, moves the prefix, and uses it):
#   bin/backprop              found its library through $ORIGIN/../lib
#   lib/libbackprop.so, .a    the shared library keeps the run path to the
#                             CUDA libraries it links (outside the system's)
#   include/backprop.h, backprop_file.h
#   lib/cmake/backprop/       find_package(backprop): the shared library
#                             (needs nothing more), and with COMPONENTS static
#                             the static one and its link dependencies, found
#                             as targets (BLAS::BLAS, CUDA::cublas, MPI::MPI_C)
#                             where the consumer is, never as this machine's
#                             paths; 0.x versions are compatible only within
#                             their minor version (SameMinorVersion)
#   lib/pkgconfig/backprop.pc Libs.private for --static, a run path to libdir
#   share/man/man1/           backprop.1 and backprop-COMMAND.1 (help2man,
#                             from each --help), when help2man is found
#   share/doc/backprop/       LICENSE, README.md, docs/, examples/

# ---- run paths ------------------------------------------------------------------
file(RELATIVE_PATH BP_BIN_TO_LIB "${CMAKE_INSTALL_FULL_BINDIR}" "${CMAKE_INSTALL_FULL_LIBDIR}")
if(TARGET backprop_cli)
  set_target_properties(backprop_cli PROPERTIES
    INSTALL_RPATH "$ORIGIN/${BP_BIN_TO_LIB}" INSTALL_RPATH_USE_LINK_PATH ON)
endif()
set_target_properties(backprop PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

# ---- the libraries, header and CMake package -------------------------------------
# The static library's link dependencies as the consumer's targets once
# installed; this build's own (paths and targets) while building.
set(BP_STATIC_LINK BLAS::BLAS ZLIB::ZLIB Threads::Threads m)
if(BP_HAVE_CUDA)
  list(APPEND BP_STATIC_LINK CUDA::cudart_static CUDA::cublas CUDA::cublasLt stdc++)
endif()
if(BP_HAVE_MPI)
  list(APPEND BP_STATIC_LINK MPI::MPI_C)
endif()
if(BP_HAVE_NCCL)
  list(APPEND BP_STATIC_LINK backprop::nccl)
endif()
foreach(lib IN LISTS BP_STATIC_LINK)
  target_link_libraries(backprop_static PRIVATE "$<INSTALL_INTERFACE:${lib}>")
endforeach()

install(TARGETS backprop EXPORT backpropTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS backprop_static EXPORT backpropStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/backprop.h include/backprop_file.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT backpropTargets NAMESPACE backprop::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/backprop)
install(EXPORT backpropStaticTargets NAMESPACE backprop::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/backprop)
include(CMakePackageConfigHelpers)
set(BP_CONFIG_BLA_VENDOR "${BLA_VENDOR}")
configure_package_config_file(cmake/backpropConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/backpropConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/backprop)
# README, "Compatibility": before 1.0 a minor release may break the ABI.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(BP_COMPATIBILITY SameMinorVersion)
else()
  set(BP_COMPATIBILITY SameMajorVersion)
endif()
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/backpropConfigVersion.cmake
  COMPATIBILITY ${BP_COMPATIBILITY})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/backpropConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/backpropConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/backprop)
include(cmake/pkg_config.cmake)             # backprop.pc with the libraries found above
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/backprop.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# ---- documents and man pages --------------------------------------------------------
install(FILES LICENSE README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs)
install(FILES examples/xor.c examples/fit.c examples/fit.py examples/backprop_torch.py examples/load_in_pytorch.py
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

find_program(BP_HELP2MAN help2man)
if(TARGET backprop_cli AND BP_HELP2MAN AND NOT CMAKE_CROSSCOMPILING)
  set(BP_MAN_PAGES "")
  # page|what the NAME line says (src/cli/main.c's summaries)
  set(bp_man_pages
    "backprop|train and use fully connected neural networks (backpropagation, CPU and CUDA)"
    "train|train a network (Fashion-MNIST by default) and report its accuracy"
    "eval|loss, accuracy, confusion matrix and per-class scores of a saved model"
    "predict|one CSV row of classes and probabilities (or outputs) per sample"
    "compare|CPU-vs-GPU gradients of the same network, per layer"
    "gradcheck|backprop gradients against finite differences"
    "trace|every quantity of one backprop step on a tiny network"
    "info|version, backends and CUDA devices")
  foreach(entry IN LISTS bp_man_pages)
    string(REPLACE "|" ";" entry "${entry}")
    list(GET entry 0 command)
    list(GET entry 1 what)
    set(page backprop-${command})
    set(argument ${command})
    if(command STREQUAL "backprop")
      set(page backprop)
      set(argument "")
    endif()
    add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.1
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
      COMMAND ${CMAKE_COMMAND} -D BACKPROP=$<TARGET_FILE:backprop_cli> -D HELP2MAN=${BP_HELP2MAN}
              -D SUBCOMMAND=${argument} -D PAGE=${page} -D WHAT=${what}
              -D VERSION=${PROJECT_VERSION} -D OUT_DIR=${CMAKE_CURRENT_BINARY_DIR}/man
              -P ${PROJECT_SOURCE_DIR}/cmake/man_page.cmake
      DEPENDS backprop_cli ${PROJECT_SOURCE_DIR}/cmake/man_page.cmake
      COMMENT "Man page ${page}.1 from backprop ${argument} --help" VERBATIM)
    list(APPEND BP_MAN_PAGES ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.1)
  endforeach()
  add_custom_target(man_pages ALL DEPENDS ${BP_MAN_PAGES})
  install(FILES ${BP_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
elseif(TARGET backprop_cli)
  message(STATUS "backprop: help2man not found: no man pages (apt-get install help2man)")
endif()
