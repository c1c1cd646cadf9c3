from django.urls import path

from taskcenter.accounts import views

app_name = "accounts"
urlpatterns = [
    path("manage/", views.manage_index, name="manage"),
    path("manage/users/", views.user_list, name="user_list"),
    path("manage/users/new/", views.user_create, name="user_create"),
    path("manage/users/<int:user_id>/", views.user_detail, name="user_detail"),
    path("manage/users/<int:user_id>/roles/", views.user_roles, name="user_roles"),
    path("manage/users/<int:user_id>/password/", views.user_password, name="user_password"),
    path("manage/users/<int:user_id>/deactivate/", views.user_deactivate, name="user_deactivate"),
    path("manage/users/<int:user_id>/activate/", views.user_activate, name="user_activate"),
    path("manage/roles/", views.role_list, name="role_list"),
    path("manage/roles/<int:role_id>/", views.role_detail, name="role_detail"),
    path("manage/roles/<int:role_id>/delete/", views.role_delete, name="role_delete"),
    path("manage/keys/", views.key_list, name="key_list"),
    path("manage/keys/<str:key_id>/revoke/", views.key_revoke, name="key_revoke"),
    path("manage/audit/", views.account_audit, name="audit"),
    path("account/", views.account, name="account"),
    path("account/password/", views.account_password, name="account_password"),
    path("account/time-zone/", views.account_time_zone, name="account_time_zone"),
    path("account/keys/", views.account_key_create, name="account_key_create"),
    path("account/keys/<str:key_id>/revoke/", views.account_key_revoke, name="account_key_revoke"),
]
