-- The staff's day list (by location and start) and the catalog checks for appointments
-- a change would strand (by resource, still to end) read rm_appointments by these.
CREATE INDEX rm_appointments_location_start ON rm_appointments (location_id, starts_at);
CREATE INDEX rm_appointments_resource_end ON rm_appointments (resource_id, ends_at);
