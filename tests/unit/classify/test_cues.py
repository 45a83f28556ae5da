# ruff: noqa: RUF001  (Turkish and Persian test sentences)
"""Threat, churn and abuse cues in each of the nine languages, through the whole scorer."""

from __future__ import annotations

import pytest

from services.classify.scoring import Context, score, text_signals
from services.classify.text.cues import find_cues, fold
from services.classify.text.lexicons import LEXICONS
from services.classify.text.model import default_model
from shared.events.common import Channel, CustomerProfile, Priority

# (language, legal threat, safety threat, churn, abuse), each a sentence a customer writes.
CASES = [
    (
        "en",
        "My lawyer will hear about this, I am going to sue you.",
        "If this happens again I will kill you, I know where your shop is.",
        "Cancel my subscription, I am switching to your competitor.",
        "You are useless idiots.",
    ),
    (
        "fi",
        "Haastan teidät oikeuteen, asianajajani on jo tiedossa.",
        "Laturi syttyi palamaan ja sain palovamman kädestäni.",
        "Irtisanon sopimuksen, en enää ikinä asioi teillä.",
        "Olette täysiä idiootteja, vittu mitä paskaa.",
    ),
    (
        "et",
        "Pöördun kohtusse ja mu advokaat võtab teiega ühendust.",
        "Ma tapan teid kui see jätkub.",
        "Ma tühistan lepingu ja lähen üle konkurendile.",
        "Te olete lollid idioodid, kurat.",
    ),
    (
        "id",
        "Saya akan menempuh jalur hukum dan menghubungi pengacara saya.",
        "Powerbank ini meledak dan anak saya terluka.",
        "Saya mau berhenti berlangganan, tidak akan lagi pakai layanan ini.",
        "Dasar goblok, pelayanan bangsat.",
    ),
    (
        "tr",
        "Avukatıma danışıp size dava açacağım.",
        "Bir daha olursa sizi öldürürüm.",
        "Aboneliğimi iptal ediyorum, bir daha asla sizden almam.",
        "Gerizekalı herifler, şerefsizler.",
    ),
    (
        "fa",
        "از شما شکایت می‌کنم و وکیلم پیگیری خواهد کرد.",
        "دستگاه آتش گرفت و بچه‌ام زخمی شد.",
        "اشتراک را لغو کنید، دیگر هرگز از شما خرید نمی‌کنم.",
        "شما احمق‌ها هیچ کاری بلد نیستید، بی‌شعورها.",
    ),
    (
        "de",
        "Ich werde Sie verklagen, mein Anwalt ist informiert.",
        "Das Gerät ist explodiert und mein Sohn wurde verletzt.",
        "Ich kündige meinen Vertrag, nie wieder bei Ihnen.",
        "Ihr seid doch alle Vollidioten, so eine Scheiße.",
    ),
    (
        "fr",
        "Je vais porter plainte et mon avocat vous contactera.",
        "Le chargeur a pris feu, ma fille est blessée.",
        "Je résilie mon abonnement, plus jamais chez vous.",
        "Bande de connards, service de merde.",
    ),
    (
        "es",
        "Voy a contactar a mi abogado y poner una demanda.",
        "El cargador explotó y mi hijo tiene una herida en la mano.",
        "Quiero dar de baja mi cuenta, nunca más compro aquí.",
        "Sois unos idiotas, qué servicio de mierda.",
    ),
]


def verdict(text: str, language: str, **context: object):
    signals = text_signals(default_model(), [text], [language])[0]
    return score(signals, Context(channel=Channel.EMAIL, **context))  # type: ignore[arg-type]


def test_every_language_has_every_cue() -> None:
    assert set(LEXICONS) == {"en", "fi", "et", "id", "tr", "fa", "de", "fr", "es"}
    for language, cues in LEXICONS.items():
        for cue in ("legal", "safety", "churn", "abuse", "manager", "anger", "upset"):
            assert cues.get(cue), f"{language} has no {cue} terms"


@pytest.mark.parametrize(("language", "legal", "safety", "churn", "abuse"), CASES)
def test_threat_churn_and_abuse_cues(
    language: str, legal: str, safety: str, churn: str, abuse: str
) -> None:
    v = verdict(legal, language)
    assert v.flags.legal_threat and not v.flags.safety_threat
    assert v.profile is CustomerProfile.LITIGANT
    assert v.urgency.priority in (Priority.P1, Priority.P2)
    assert "involve_legal" in v.hints

    v = verdict(safety, language)
    assert v.flags.safety_threat
    assert v.urgency.priority is Priority.P1
    assert v.hints[0] == "escalate_safety_now"

    v = verdict(churn, language)
    assert v.flags.churn_intent and not v.flags.legal_threat and not v.flags.safety_threat

    v = verdict(abuse, language)
    assert v.flags.abusive and not v.flags.legal_threat
    assert "cool_off_before_answering" in v.hints


@pytest.mark.parametrize(("language", "legal", "safety", "churn", "abuse"), CASES)
def test_calm_text_raises_no_flag(
    language: str, legal: str, safety: str, churn: str, abuse: str
) -> None:
    calm = {
        "en": "Could you tell me when my order ships? Thanks.",
        "fi": "Milloin tilaukseni lähtee? Kiitos.",
        "et": "Millal mu tellimus teele läheb? Aitäh.",
        "id": "Kapan pesanan saya dikirim? Terima kasih.",
        "tr": "Siparişim ne zaman gönderilir? Teşekkürler.",
        "fa": "سفارش من کی ارسال می‌شود؟ ممنون.",
        "de": "Wann wird meine Bestellung verschickt? Danke.",
        "fr": "Quand ma commande sera-t-elle expédiée ? Merci.",
        "es": "¿Cuándo se envía mi pedido? Gracias.",
    }[language]
    flags = verdict(calm, language).flags
    assert not (flags.legal_threat or flags.safety_threat or flags.churn_intent or flags.abusive)


def test_folding_matches_accents_dotless_i_and_persian_forms() -> None:
    assert fold("KIZGIN Müşteri  İPTAL") == "kizgin musteri iptal"
    assert find_cues("I want to CANCEL", "en")["churn"] == ["cancel"]
    assert "legal" in find_cues("Je vais voir un AVOCAT", "fr")
    # Arabic yeh/kaf and a ZWNJ written the other way still match the Persian lexicon.
    assert "churn" in find_cues("لغو كنيد", "fa")


def test_prefix_terms_match_inflections_but_not_inside_words() -> None:
    assert "legal" in find_cues("Otan yhteyttä asianajajaani", "fi")
    assert find_cues("scancel", "en") == {}


def test_unknown_language_uses_every_lexicon() -> None:
    assert "legal" in find_cues("mein Anwalt", "und")
    assert "churn" in find_cues("iptal ediyorum", "xx")


def test_manager_request_is_flagged() -> None:
    assert verdict("I want to speak to your manager now.", "en").flags.manager_requested
    assert verdict("Haluan puhua esimiehen kanssa.", "fi").flags.manager_requested
