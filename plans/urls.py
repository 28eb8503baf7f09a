from django.urls import path

from . import views

app_name = "plans"

urlpatterns = [
    path("", views.search, name="search"),
    path("hold/", views.hold, name="hold"),
    path("holds/<int:pk>/cancel/", views.hold_cancel, name="hold_cancel"),
    path("holds/<int:pk>/checkout/", views.checkout, name="checkout"),
    path("mine/", views.my_numbers, name="my_numbers"),
    path("mine/<int:pk>/", views.subscription_detail, name="subscription"),
    path("mine/<int:pk>/package/", views.change_plan, name="change_plan"),
    path("mine/<int:pk>/services/", views.change_services, name="change_services"),
    path(
        "mine/<int:pk>/answering/",
        views.change_answer_numbers,
        name="change_answer_numbers",
    ),
    path("mine/<int:pk>/end/", views.end_subscription, name="end"),
    path("packages/", views.compare, name="compare"),
]
