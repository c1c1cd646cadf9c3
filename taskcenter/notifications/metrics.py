"""Notifications in /metrics: deliveries by channel kind and status, events not yet
fanned out (the outbox's backlog)."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from taskcenter.notifications.models import Delivery, Event


class DeliveriesCollector:
    def collect(self):
        deliveries = CounterMetricFamily(
            "taskcenter_notification_deliveries",
            "Notification deliveries by channel kind and status (PENDING, DELIVERED, DEAD, "
            "DROPPED).",
            labels=["channel_kind", "status"],
        )
        counts = (
            Delivery.objects.order_by()
            .values_list("channel__kind", "status")
            .annotate(count=Count("pk"))
        )
        for kind, status, count in counts:
            deliveries.add_metric([kind, status], count)
        yield deliveries
        yield GaugeMetricFamily(
            "taskcenter_notification_events_backlog",
            "Events recorded and not yet fanned out to the rules.",
            value=Event.objects.filter(fanned_out=False).count(),
        )
