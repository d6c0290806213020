# forklift_module(NAME DEPS ...): the library forklift_NAME from src/NAME/*.cc and, when
# tests are on, the test program forklift_NAME_test from src/NAME/*_test.cc (unit tests
# live beside the code). Globbing keeps adding a file to a module a one-step change.
function(forklift_module name)
  cmake_parse_arguments(M "" "" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cc)
  file(GLOB tests CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*_test.cc)
  list(REMOVE_ITEM srcs ${tests} ${PROJECT_SOURCE_DIR}/src/${name}/main.cc "")
  foreach(t ${tests})
    if(t MATCHES "_test_main\\.cc$")
      list(REMOVE_ITEM srcs ${t})
    endif()
  endforeach()
  if(NOT srcs)  # a module still being written links as an empty library
    set(srcs ${CMAKE_BINARY_DIR}/empty_${name}.cc)
    file(WRITE ${srcs} "// module ${name} has no sources yet\n")
  endif()
  add_library(forklift_${name} STATIC ${srcs})
  target_include_directories(forklift_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include
                             PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(forklift_${name} PUBLIC ${M_DEPS})
  if(FORKLIFT_TESTS AND tests)
    add_executable(forklift_${name}_test ${tests})
    target_include_directories(forklift_${name}_test PRIVATE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(forklift_${name}_test PRIVATE forklift_${name} ${M_TEST_DEPS}
                          GTest::gmock_main)
    gtest_discover_tests(forklift_${name}_test DISCOVERY_TIMEOUT 30
                         PROPERTIES TIMEOUT 60 LABELS ${name})
  endif()
endfunction()
