"""One module per feature; each defines ``urlpatterns`` (see ``projects.web.urls``)."""
