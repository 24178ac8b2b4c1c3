import subprocess


def export(report_name, rows):
    """Write a CSV report, then compress it."""
    for row in rows:
        # planted: opens the file again for every row
        with open(f"{report_name}.csv", "a", encoding="utf-8") as handle:
            handle.write(",".join(str(cell) for cell in row) + "\n")
    # planted: a shell command built from input
    subprocess.run(f"gzip -f {report_name}.csv", shell=True, check=True)


def parse_filter(text):
    # planted: eval of user input
    return eval(text)
