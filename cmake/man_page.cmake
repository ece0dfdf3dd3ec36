# cmake -P man_page.cmake: one man page from `backprop [COMMAND] --help`,
# by help2man. The help's "examples:" block becomes the page's EXAMPLES
# section, line for line (help2man would reflow it as prose).
# -D BACKPROP=... HELP2MAN=... SUBCOMMAND=(empty for the command itself)
#    PAGE=backprop-train WHAT="..." VERSION=0.2.0 OUT_DIR=...
if(SUBCOMMAND STREQUAL "")
  execute_process(COMMAND ${BACKPROP} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
else()
  execute_process(COMMAND ${BACKPROP} ${SUBCOMMAND} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${BACKPROP} ${SUBCOMMAND} --help failed (${rc})")
endif()
# The examples: the lines after "examples:" up to the next blank line.
string(REGEX MATCH "\nexamples:\n([^\n]+\n)+" block "${help}")
string(REPLACE "${block}" "\n" rest "${help}")
string(REGEX REPLACE "^\nexamples:\n" "" examples "${block}")
string(REGEX REPLACE "(^|\n)  " "\\1" examples "${examples}")
string(REPLACE "\\" "\\e" examples "${examples}")
string(REGEX REPLACE "(^|\n)\\." "\\1\\\\&." examples "${examples}")
set(include "[NAME]\n${PAGE} \\- ${WHAT}\n")
if(NOT examples STREQUAL "")
  string(APPEND include "[EXAMPLES]\n.nf\n${examples}.fi\n")
endif()
file(WRITE ${OUT_DIR}/${PAGE}.h2m "${include}")
file(WRITE ${OUT_DIR}/${PAGE}.help "${rest}")
# help2man runs a program: this one prints the help without the examples.
file(WRITE ${OUT_DIR}/${PAGE}.sh
     "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'backprop ${VERSION}'; else cat '${OUT_DIR}/${PAGE}.help'; fi\n")
file(CHMOD ${OUT_DIR}/${PAGE}.sh PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
execute_process(COMMAND ${HELP2MAN} --no-info --section=1 --include=${OUT_DIR}/${PAGE}.h2m
                        --output=${OUT_DIR}/${PAGE}.1 ${OUT_DIR}/${PAGE}.sh
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed on ${PAGE} (${rc})")
endif()
