"""Appointments (预约): the working-day calendar, slots from the opening hours and the staffing
plan, bookings with pre-review and their state machine, the timing policy at the booked
time, callbacks that keep the taxpayer's place, and the reminder outbox
(docs/appointments.md). Domain code: no transport imports."""
