# `make install` / `cmake --install`: what forklift installs, in which component, and the
# Debian packages CPack makes of the components (`make deb`). docs/install.md describes
# the layout for users; keep the two in step.
#
#   component  Debian package    what
#   cli        forklift          bin/forklift, man pages, bash and zsh completions, docs
#   lib        libforklift0.2    libforklift.so.0.2 (the run_batch library)
#   dev        libforklift-dev   headers, libforklift.so, libforklift.a, CMake package,
#                                pkg-config file
include(CMakePackageConfigHelpers)

set(FORKLIFT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/forklift)

# The library, shared and static, with one export set each, so that the CMake package can
# load one without the other's dependencies (a static link needs SQLite and fmt).
install(TARGETS forklift_shared EXPORT forklift-shared-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
install(TARGETS forklift_static EXPORT forklift-static-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
foreach(kind shared static)
  install(EXPORT forklift-${kind}-targets NAMESPACE forklift:: DESTINATION ${FORKLIFT_CMAKE_DIR}
          COMPONENT dev)
endforeach()

# The public headers: every header under include/forklift/ (detail/ is included by batch.h)
# and the generated version.h.
install(DIRECTORY include/forklift DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h"
        # run_batch with a queue needs libpq (the queue module): not in the installed library.
        PATTERN "queue_batch.h" EXCLUDE)
install(FILES ${PROJECT_BINARY_DIR}/include/forklift/version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/forklift COMPONENT dev)

configure_package_config_file(cmake/forkliftConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/package/forkliftConfig.cmake
                              INSTALL_DESTINATION ${FORKLIFT_CMAKE_DIR})
# 0.x: a minor version may break the API, so 0.2 satisfies requests for 0.2.x only.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/package/forkliftConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/package/forkliftConfig.cmake
              ${PROJECT_BINARY_DIR}/package/forkliftConfigVersion.cmake
        DESTINATION ${FORKLIFT_CMAKE_DIR} COMPONENT dev)

# pkg-config: written at install time, so that the prefix is the one installed into
# (`cmake --install build --prefix P` may differ from the configured CMAKE_INSTALL_PREFIX).
install(CODE "
  set(PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(PROJECT_DESCRIPTION \"${PROJECT_DESCRIPTION}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/cmake/forklift.pc.in\"
                 \"${PROJECT_BINARY_DIR}/package/pc/forklift.pc\" @ONLY)
  file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\"
       TYPE FILE FILES \"${PROJECT_BINARY_DIR}/package/pc/forklift.pc\")
" COMPONENT dev)

if(FORKLIFT_CLI)
  install(TARGETS forklift RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
  # bash-completion finds completions under every XDG data dir (/usr/local/share too).
  install(FILES completions/forklift.bash RENAME forklift
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT cli)
  # zsh: Debian's zsh reads packages' completions from /usr/share/zsh/vendor-completions and
  # the local administrator's from /usr/local/share/zsh/site-functions (upstream zsh's
  # default for any prefix), so the directory follows the prefix installed into.
  install(CODE "
    if(\"\${CMAKE_INSTALL_PREFIX}\" STREQUAL \"/usr\")
      set(zsh_dir \"${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions\")
    else()
      set(zsh_dir \"${CMAKE_INSTALL_DATADIR}/zsh/site-functions\")
    endif()
    file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/\${zsh_dir}\" TYPE FILE
         FILES \"${PROJECT_SOURCE_DIR}/completions/_forklift\")
  " COMPONENT cli)
  install(FILES README.md docs/map.md docs/flow.md docs/load.md
          DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT cli)
  set(FORKLIFT_DOC_COMPONENT cli)
else()
  set(FORKLIFT_DOC_COMPONENT dev)
endif()
# What a user of the library reads too: with the CLI's docs, or with the headers.
install(FILES CHANGELOG.md docs/install.md docs/batch.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT ${FORKLIFT_DOC_COMPONENT})

# `make deb` (cpack -G DEB): one package per component, dependencies from dpkg-shlibdeps
# (the Debian packages of the libraries the binaries link: libpq5, libsqlite3-0, ...).
set(CPACK_PACKAGE_NAME forklift)
set(CPACK_PACKAGE_VENDOR "forklift")
set(CPACK_PACKAGE_CONTACT "forklift maintainers <forklift@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# CPack's own default, on purpose: any other summary is prepended to every component's
# description, and each component's description below starts with its own summary line.
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_NAME} built using CMake")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev)
if(FORKLIFT_CLI)
  list(PREPEND CPACK_COMPONENTS_ALL cli)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # NAME_VERSION-RELEASE_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(FORKLIFT_DEB_LIB libforklift${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
set(CPACK_DEBIAN_CLI_PACKAGE_NAME forklift)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION utils)
# The CLI links the engine statically (one binary, no libforklift.so at run time); flows
# run their tasks with /bin/sh.
set(CPACK_DEBIAN_CLI_PACKAGE_DEPENDS "")
set(CPACK_DEBIAN_LIB_PACKAGE_NAME ${FORKLIFT_DEB_LIB})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
# A shlibs file (dpkg-shlibdeps of packages linking libforklift then depend on
# libforklift0.2 (= 0.2.0-1)) and the ldconfig trigger instead of CPack's postinst.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_LIB_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/deb/triggers
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libforklift-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_SHLIBDEPS OFF)
# What compiling against the headers and linking the static library need.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "${FORKLIFT_DEB_LIB} (= ${PROJECT_VERSION}-1), libexpected-dev, libsqlite3-dev, libfmt-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "pkg-config, cmake")
# Each: the summary line, then the extended description (CPack indents it).
set(CPACK_COMPONENT_CLI_DESCRIPTION
    "batch work in parallel: bounded, isolated, resumable, observable
forklift runs batch work in parallel: a command per input item with GNU
parallel's syntax (forklift map), a DAG of tasks from a flow file with logs,
retries and a report (forklift run), and parallel, exactly-once CSV loads into
PostgreSQL or SQLite (forklift load), all recorded in one SQLite journal so
that an interrupted run resumes where it stopped.")
set(CPACK_COMPONENT_LIB_DESCRIPTION
    "forklift's run_batch C++ library (shared library)
libforklift runs a function over items on a bounded worker pool, with per-item
timeouts, isolated errors, retries with backoff, progress, a summary, thread or
process isolation and durable checkpoints in SQLite.")
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "forklift's run_batch C++ library (development files)
Headers, the static library, the CMake package (find_package(forklift)) and
the pkg-config file of libforklift.")
include(CPack)
