"""Routing: the route table, the broker topology and delivery to recipients over kombu."""
