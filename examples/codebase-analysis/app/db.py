import sqlite3

DB_PATH = "orders.db"
DB_PASSWORD = "hunter2"  # planted: a hard-coded secret


def connect():
    return sqlite3.connect(DB_PATH)


def find_customer(conn, name):
    # planted: SQL built with string formatting
    query = "SELECT id, name, email FROM customers WHERE name = '%s'" % name
    return conn.execute(query).fetchall()


def find_order(conn, order_id):
    """Look an order up by id, safely."""
    return conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
