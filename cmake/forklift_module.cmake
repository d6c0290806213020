# forklift_module(NAME [LIBRARY] DEPS ... [TEST_DEPS ...]): the library forklift_NAME from
# src/NAME/*.cc and, when tests are on, the test program forklift_NAME_test from
# src/NAME/*_test.cc (unit tests live beside the code). Globbing keeps adding a file to a
# module a one-step change.
#
# LIBRARY marks a module that is part of the installed libforklift (docs/install.md): its
# sources compile once, position-independent, into the object library
# forklift_NAME_objects; the in-tree static library forklift_NAME (what the tests, the CLI
# and the examples link) and the installed libforklift.so and libforklift.a
# (forklift_add_installed_library below) are all made of those same objects, so the
# installed library costs no second compile.
function(forklift_module name)
  cmake_parse_arguments(M "LIBRARY" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*_test.cc)
  list(REMOVE_ITEM srcs ${tests} ${PROJECT_SOURCE_DIR}/src/${name}/main.cc "")
  if(M_LIBRARY)
    add_library(forklift_${name}_objects OBJECT ${srcs})
    set_target_properties(forklift_${name}_objects PROPERTIES POSITION_INDEPENDENT_CODE ON)
    target_include_directories(forklift_${name}_objects PUBLIC ${FORKLIFT_INCLUDE_DIRS}
                               PRIVATE ${PROJECT_SOURCE_DIR}/src)
    # Usage requirements only (include directories, definitions): objects do not link.
    target_link_libraries(forklift_${name}_objects PUBLIC ${M_DEPS})
    add_library(forklift_${name} STATIC $<TARGET_OBJECTS:forklift_${name}_objects>)
    set_property(GLOBAL APPEND PROPERTY FORKLIFT_LIBRARY_MODULES ${name})
  else()
    add_library(forklift_${name} STATIC ${srcs})
  endif()
  target_include_directories(forklift_${name} PUBLIC ${FORKLIFT_INCLUDE_DIRS}
                             PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(forklift_${name} PUBLIC ${M_DEPS})
  if(FORKLIFT_TESTS AND tests)
    add_executable(forklift_${name}_test ${tests})
    # tests/: the shared test support (support/temp_dir.h).
    target_include_directories(forklift_${name}_test PRIVATE ${PROJECT_SOURCE_DIR}/src
                               ${PROJECT_SOURCE_DIR}/tests)
    target_link_libraries(forklift_${name}_test PRIVATE forklift_${name} ${M_TEST_DEPS}
                          GTest::gmock_main)
    gtest_discover_tests(forklift_${name}_test DISCOVERY_TIMEOUT 30
                         PROPERTIES TIMEOUT 60 LABELS ${name})
  endif()
endfunction()

# forklift_add_installed_library(): libforklift.so (target forklift_shared) and
# libforklift.a (forklift_static), both made of the objects of every LIBRARY module, with
# the public headers' usage requirements. PUBLIC_DEPS are what the headers need (a user
# compiles against them); PRIVATE_DEPS what the objects need at link time (the shared
# library hides them; the static one passes them on as link-only).
function(forklift_add_installed_library)
  cmake_parse_arguments(L "" "" "PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  get_property(modules GLOBAL PROPERTY FORKLIFT_LIBRARY_MODULES)
  set(objects "")
  foreach(m ${modules})
    list(APPEND objects $<TARGET_OBJECTS:forklift_${m}_objects>)
  endforeach()
  foreach(kind shared static)
    string(TOUPPER ${kind} KIND)
    add_library(forklift_${kind} ${KIND} ${objects})
    add_library(forklift::forklift_${kind} ALIAS forklift_${kind})
    set_target_properties(forklift_${kind} PROPERTIES
      OUTPUT_NAME forklift
      EXPORT_NAME forklift_${kind}
      ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib
      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
    target_include_directories(forklift_${kind} PUBLIC
      "$<BUILD_INTERFACE:${FORKLIFT_INCLUDE_DIRS}>"
      "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
    if(kind STREQUAL "shared")
      # Hidden behind the SONAME, linked by file: the exported target then names none of
      # them (as targets, CMake would list fmt::fmt for -rpath-link, a target a user's
      # project lacks). The objects got their include directories from their modules.
      set(private "")
      foreach(d ${L_PRIVATE_DEPS})
        list(APPEND private "$<TARGET_LINKER_FILE:${d}>")
      endforeach()
    else()
      set(private ${L_PRIVATE_DEPS})  # exported as $<LINK_ONLY:...>: the package finds them
    endif()
    target_link_libraries(forklift_${kind} PUBLIC ${L_PUBLIC_DEPS} PRIVATE ${private})
    target_compile_features(forklift_${kind} PUBLIC cxx_std_20)
  endforeach()
  # 0.x: every minor version may change the ABI, so the SONAME carries major.minor.
  set_target_properties(forklift_shared PROPERTIES
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  # Every symbol resolved at link time (a missing dependency is a link error here, not at a
  # user's run time), and no NEEDED entry for a library it does not use. Not with
  # sanitizers or libFuzzer's coverage: their runtimes come with the executable.
  if(NOT FORKLIFT_SANITIZE AND NOT FORKLIFT_FUZZ)
    target_link_options(forklift_shared PRIVATE -Wl,--no-undefined -Wl,--as-needed)
  endif()
endfunction()
