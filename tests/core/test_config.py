import pytest

from core.config import REQUIRED_IN_PRODUCTION, ConfigError, Settings


def test_local_defaults_need_nothing():
    settings = Settings.from_env({})
    assert settings.database_url.startswith("sqlite:///")
    assert not settings.is_production
    assert settings.twilio_api_base == ""


def test_production_names_every_missing_setting():
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"AFTERCALL_ENV": "production", "DATABASE_URL": "postgresql://x/y"})
    for name in REQUIRED_IN_PRODUCTION:
        if name != "DATABASE_URL":
            assert name in str(error.value)
    assert "DATABASE_URL" not in str(error.value)


def test_production_requires_https_public_url():
    env = {name: "x" for name in REQUIRED_IN_PRODUCTION}
    env |= {"AFTERCALL_ENV": "production", "PUBLIC_BASE_URL": "http://example.com"}
    with pytest.raises(ConfigError, match="https"):
        Settings.from_env(env)
    env["PUBLIC_BASE_URL"] = "https://example.com/"
    assert Settings.from_env(env).public_base_url == "https://example.com"


def test_callback_number_defaults_to_the_calling_number():
    settings = Settings.from_env({"TWILIO_FROM_NUMBER": "+15005550006"})
    assert settings.callback_number == "+15005550006"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CALLS_PER_SECOND", "nan"),
        ("CALLS_PER_SECOND", "inf"),
        ("SURVEY_REFRESH_SECONDS", "nan"),
        ("SURVEY_REFRESH_SECONDS", "inf"),
        ("SURVEY_REFRESH_SECONDS", "1e-9"),
        ("SURVEY_REFRESH_SECONDS", "86400"),
        ("SURVEY_REFRESH_SECONDS", "0"),
        ("SURVEY_REFRESH_SECONDS", "soon"),
    ],
)
def test_a_number_setting_out_of_range_is_refused_by_name(name, raw):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


def test_survey_refresh_seconds_in_range():
    assert Settings.from_env({"SURVEY_REFRESH_SECONDS": "0.5"}).survey_refresh_seconds == 0.5
    assert Settings.from_env({}).survey_refresh_seconds == 2.0
