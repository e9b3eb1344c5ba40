"""The RIS integration's application side: inbound effects and the inbound-message
desk, order and RIS-booking commands, the outbound delivery policy, the Deliveries
application and the delivery desk."""
