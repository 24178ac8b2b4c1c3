"""What commands derive from a workspace, kept beside it while its sources stay the same:
``stamps`` (the sources' stamp: equal stamps, the same sources; settled or not) and
``snapshot`` (``state/snapshot.NAME``: a payload of plain data under its stamp, ``cached``)."""
