"""The commands as functions, behind every door: the command line, the MCP server and the HTTP API
call the same function with the same typed arguments, and each renders its typed result (the CLI
prints it, MCP and HTTP serialize it); an error is a class that carries its exit code, HTTP status
and JSON-RPC code (``errors``).

    table    each command's options as data (``options.Opt``) and where its work is
    options  an option: the argparse parser, a JSON Schema, a program's arguments read and checked
    calling  ``Call`` (a workspace and its arguments), ``Result``, ``call`` (a program's door)
    reading  status, output, logs, history, validate      listing   list
    changing add, update, approve, reject, answer, cancel, retry
    starting run, started in the background               runopts   run's options
    verifying verify: the event log's chain and the results it recorded
    notices  what validate tells beside the plan's problems
    words    what a command line's words mean where several commands take them
"""
