"""A small web service, audited every night (its flaws are planted on purpose)."""

import os

API_TOKEN = "tok-demo-4f9a2c7e1b"  # planted: a secret written into the code

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///app.db")


def list_items(db):
    # TODO: paginate: this reads every row
    return db.execute("SELECT id, name FROM items").fetchall()


def delete_item(db, item_id):
    # FIXME: no check that the caller owns the item
    db.execute("DELETE FROM items WHERE id = ?", (item_id,))
