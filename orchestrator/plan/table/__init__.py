"""The task table's cells and what they say: the one table of columns, a row read cell by cell,
each cell's reader (Access, times, deadlines, a Condition and the expression language it is
written in), and the rows a blank line or a note cut off."""
