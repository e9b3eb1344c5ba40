from fastapi import APIRouter

from api.deps import Public, ServicesDep
from api.schemas.catalog import AppointmentTypeOut, LocationOut

router = APIRouter(prefix="/v1/catalog", tags=["catalog"], dependencies=[Public])


@router.get(
    "/locations", response_model=list[LocationOut], summary="Imaging centres and mobile units"
)
def locations(services: ServicesDep) -> list[LocationOut]:
    return [
        LocationOut.model_validate({**spec, "id": str(location_id)})
        for location_id, spec in services.catalog_view.locations()
    ]


@router.get("/appointment-types", response_model=list[AppointmentTypeOut], summary="Bookable exams")
def appointment_types(services: ServicesDep) -> list[AppointmentTypeOut]:
    return [
        AppointmentTypeOut.model_validate({**spec, "id": str(type_id)})
        for type_id, spec in services.catalog_view.appointment_types()
    ]
