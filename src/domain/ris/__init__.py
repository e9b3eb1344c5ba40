"""The RIS integration's aggregates: orders the RIS sends, bookings the RIS makes on
our resources, results no order claimed, and outbound message deliveries."""
