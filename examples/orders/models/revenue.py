# Revenue per customer, in plain Python (standard library only).
#
# weir: inputs = main.clean_orders
# weir: outputs = main.revenue
#
# Inputs arrive as CSV with a header line ($WEIR_IN_<NS>_<TABLE>); the
# output is written as CSV ($WEIR_OUT_<NS>_<TABLE>) and the server turns it
# into an Iceberg snapshot. Push parameters arrive verbatim as
# $WEIR_PARAM_<NAME>: `git push -o param.min_orders=2` keeps customers with
# at least two orders.
import csv
import os
from decimal import Decimal

min_orders = int(os.environ.get("WEIR_PARAM_min_orders", "1"))

totals, counts = {}, {}
with open(os.environ["WEIR_IN_MAIN_CLEAN_ORDERS"], newline="") as f:
    for row in csv.DictReader(f):
        c = row["customer"]
        totals[c] = totals.get(c, Decimal(0)) + Decimal(row["amount"])
        counts[c] = counts.get(c, 0) + 1

with open(os.environ["WEIR_OUT_MAIN_REVENUE"], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer", "orders", "total"])
    for c in sorted(totals):
        if counts[c] >= min_orders:
            w.writerow([c, counts[c], totals[c]])

print(f"{len(totals)} customers")
