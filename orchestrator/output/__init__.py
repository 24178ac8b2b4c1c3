"""What people read: the agent briefs, the status blocks of master_plan.md, final_output.md,
text views of a plan (status table, layers, mermaid, dot), and the live reporters of a run.
Everything is rendered from jinja templates (``templates``). Modules are imported by name; this
package exports nothing of its own.
"""
