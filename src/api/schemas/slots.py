from datetime import datetime

from pydantic import BaseModel


class SlotOut(BaseModel):
    start: datetime
    end: datetime
    location_id: str
    resource_id: str
    site: str = ""
