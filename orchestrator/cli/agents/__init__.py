"""The commands agents call from inside their tasks and from other programs: the channels,
`output`, the skill, the MCP server and its setup, and a command called with JSON arguments."""
