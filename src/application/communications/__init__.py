"""Communications with patients: the policy that turns what happened (bookings, moves,
cancellations, orders, results) into notice deliveries on the channels each patient
chose, and the views of what was sent (the patient's own list, the compliance record)."""
