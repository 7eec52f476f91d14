"""Cases: lifecycle, routing and SLA."""
