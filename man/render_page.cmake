# cmake -DFORKLIFT=... -DMANGEN=... -DOUT=... -DWORK=DIR -DNAME=... -DSECTION=N -DSUMMARY=...
#       -DSOURCE=... -DDATE=... [-DHELPS="ARGS=TITLE|ARGS=TITLE|..."] [-DMD="FILE|FILE"]
#       [-DEXAMPLE=FILE=TITLE] [-DSEE_ALSO="a(1),b(5)"] -P render_page.cmake
#
# Runs `forklift ARGS --help` for each of HELPS (a failing --help fails the build: every
# command's --help must exit 0), then forklift-mangen over those texts and the Markdown.
string(REPLACE "|" ";" helps "${HELPS}")
string(REPLACE "|" ";" mds "${MD}")
set(args --name "${NAME}" --section "${SECTION}" --summary "${SUMMARY}" --source "${SOURCE}"
         --date "${DATE}" -o "${OUT}")
set(i 0)
foreach(h IN LISTS helps)
  string(FIND "${h}" "=" eq)
  string(SUBSTRING "${h}" 0 ${eq} command)
  math(EXPR title_start "${eq} + 1")
  string(SUBSTRING "${h}" ${title_start} -1 title)
  separate_arguments(command_args UNIX_COMMAND "${command}")
  set(help_file "${WORK}/${NAME}.${i}.help")
  execute_process(COMMAND "${FORKLIFT}" ${command_args} --help OUTPUT_FILE "${help_file}"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "`forklift ${command} --help` exited ${rc} (it must exit 0)")
  endif()
  if(title STREQUAL "")
    list(APPEND args --help "${help_file}")
  else()
    list(APPEND args --help "${help_file}=${title}")
  endif()
  math(EXPR i "${i} + 1")
endforeach()
foreach(m IN LISTS mds)
  list(APPEND args --md "${m}")
endforeach()
if(EXAMPLE)
  list(APPEND args --example "${EXAMPLE}")
endif()
if(SEE_ALSO)
  list(APPEND args --see-also "${SEE_ALSO}")
endif()
execute_process(COMMAND "${MANGEN}" ${args} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "forklift-mangen failed for ${NAME}(${SECTION})")
endif()
