-- Notes for the centre on an appointment (access needs, an interpreter, ...): changed
-- without moving the appointment (Appointment.Modified, SIU^S14 to the RIS).
ALTER TABLE rm_appointments ADD COLUMN notes text NOT NULL DEFAULT '';
