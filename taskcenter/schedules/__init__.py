"""Schedules: HENGSHI execution plans (Quartz cron, dependency and one-off triggers)."""
