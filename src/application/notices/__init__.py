"""Messages to patients: what each kind of notice carries, its versioned templates per
channel and language, and the rendering the channels send (see ``renderer``)."""
