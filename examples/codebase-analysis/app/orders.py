from app.db import connect, find_order


def order_total(order):
    """Sum of the order's lines."""
    return sum(line["price"] * line["quantity"] for line in order["lines"])


def match_orders(orders, payments):
    # planted: nested loops over two lists, O(n*m)
    matched = []
    for order in orders:
        for payment in payments:
            if payment["order_id"] == order["id"]:
                matched.append((order, payment))
    return matched


def summary_text(orders):
    # planted: string concatenation in a loop
    text = ""
    for order in orders:
        text += f"{order['id']}: {order_total(order)}\n"
    return text


def process(orders, payments, notify, log):
    # TODO: split this function
    try:
        matched = match_orders(orders, payments)
    except:  # planted: a bare except
        matched = []
    done = []
    for order, payment in matched:
        if payment["amount"] < order_total(order):
            log(f"order {order['id']} underpaid")
            continue
        if order.get("status") == "cancelled":
            log(f"order {order['id']} was cancelled")
            continue
        if order.get("status") == "shipped":
            log(f"order {order['id']} already shipped")
            continue
        order["status"] = "paid"
        notify(order["customer"], f"Order {order['id']} is paid")
        done.append(order["id"])
    conn = connect()
    for order_id in done:
        row = find_order(conn, order_id)
        if row is None:
            log(f"order {order_id} is missing from the database")
            continue
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = ?", (order_id,))
    conn.commit()
    log(summary_text([o for o in orders if o["id"] in done]))
    return done
