# ruff: noqa: RUF001  (Turkish dotless i, Persian digits and dashes are the real text)
"""What followup asks the CRM to tell the customer, in the customer's language.

Honest and personal: an interim update says sorry, says plainly that the case is not solved
yet and when the customer will hear from us next; the customer is greeted by name when we
know it (never an "insert name here" placeholder) and the assignee signs with theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Kind = Literal["interim_update", "survey_request", "survey_reminder", "thank_you", "advocacy"]

DEFAULT_LANGUAGE = "en"
LANGUAGES: tuple[str, ...] = ("en", "fi", "et", "id", "tr", "fa", "de", "fr", "es")
# Close relatives the language detector reports for our languages.
_ALIASES = {"ms": "id", "nb": "en", "und": DEFAULT_LANGUAGE}

# (with a name, without one)
_GREETING: dict[str, tuple[str, str]] = {
    "en": ("Hello {name},", "Hello,"),
    "fi": ("Hei {name},", "Hei,"),
    "et": ("Tere {name},", "Tere,"),
    "id": ("Halo {name},", "Halo,"),
    "tr": ("Merhaba {name},", "Merhaba,"),
    "fa": ("{name} گرامی، سلام", "سلام،"),
    "de": ("Hallo {name},", "Guten Tag,"),
    "fr": ("Bonjour {name},", "Bonjour,"),
    "es": ("Hola, {name}:", "Hola:"),
}

# Who is working on the case when we do not know the assignee's name.
_OUR_TEAM: dict[str, str] = {
    "en": "our team",
    "fi": "tiimimme",
    "et": "meie meeskond",
    "id": "tim kami",
    "tr": "ekibimiz",
    "fa": "تیم ما",
    "de": "unser Team",
    "fr": "notre équipe",
    "es": "nuestro equipo",
}

_BODY: dict[str, dict[str, str]] = {
    "interim_update": {
        "en": "I am sorry that sorting out your complaint is taking longer than we expected. "
        "To be honest, it is not resolved yet: {assignee} is still working on it. Next step: "
        "you will hear from us again by {next_update} at the latest, sooner if it is solved "
        "before then.",
        "fi": "Pahoittelemme, että valituksenne käsittely kestää odotettua kauemmin. "
        "Rehellisesti sanottuna asia ei ole vielä ratkennut: {assignee} työskentelee sen "
        "parissa edelleen. Seuraava vaihe: kuulette meistä viimeistään {next_update}, "
        "aiemmin jos asia ratkeaa sitä ennen.",
        "et": "Vabandame, et teie kaebuse lahendamine võtab oodatust kauem aega. Ausalt "
        "öeldes ei ole see veel lahendatud: {assignee} tegeleb sellega endiselt. Järgmine "
        "samm: anname teile uuesti teada hiljemalt {next_update}, varem, kui asi saab enne "
        "lahendatud.",
        "id": "Kami mohon maaf karena penanganan keluhan Anda memakan waktu lebih lama dari "
        "perkiraan kami. Terus terang, masalahnya belum selesai: {assignee} masih "
        "menanganinya. Langkah berikutnya: kami akan menghubungi Anda lagi paling lambat "
        "{next_update}, atau lebih cepat jika sudah selesai sebelumnya.",
        "tr": "Şikâyetinizin çözümü beklediğimizden uzun sürdüğü için özür dileriz. Açıkçası "
        "sorun henüz çözülmedi: {assignee} üzerinde çalışmaya devam ediyor. Sonraki adım: en "
        "geç {next_update} tarihinde size yeniden bilgi vereceğiz; daha önce çözülürse hemen "
        "haber vereceğiz.",
        "fa": "متأسفیم که رسیدگی به شکایت شما بیش از آنچه انتظار داشتیم طول کشیده است. "
        "صادقانه بگوییم، مشکل هنوز حل نشده است: {assignee} همچنان در حال پیگیری آن است. "
        "گام بعدی: حداکثر تا {next_update} دوباره به شما خبر می‌دهیم، و اگر زودتر حل شود، "
        "زودتر.",
        "de": "es tut uns leid, dass die Bearbeitung Ihrer Beschwerde länger dauert als "
        "erwartet. Ehrlich gesagt ist sie noch nicht gelöst: {assignee} arbeitet weiter daran. "
        "Nächster Schritt: Sie hören spätestens am {next_update} wieder von uns, früher, falls "
        "es vorher gelöst ist.",
        "fr": "Nous sommes désolés que le traitement de votre réclamation prenne plus de temps "
        "que prévu. Pour être honnêtes, elle n'est pas encore résolue : {assignee} continue "
        "d'y travailler. Prochaine étape : vous aurez de nos nouvelles au plus tard le "
        "{next_update}, plus tôt si tout est réglé avant.",
        "es": "Lamentamos que la resolución de su reclamación esté tardando más de lo "
        "previsto. Para ser sinceros, todavía no está resuelta: {assignee} sigue trabajando en "
        "ella. Próximo paso: le volveremos a escribir como muy tarde el {next_update}, antes "
        "si se resuelve.",
    },
    "survey_request": {
        "en": "Your case has been resolved. Thank you for your patience, and once more, we are "
        "sorry for the trouble. Was everything handled to your satisfaction? Please rate how "
        "we handled it from 1 (very unhappy) to 5 (very happy); a comment is welcome too.",
        "fi": "Asianne on nyt ratkaistu. Kiitos kärsivällisyydestänne, ja pahoittelemme vielä "
        "kerran aiheutunutta harmia. Hoidettiinko kaikki niin kuin toivoitte? Arvioikaa "
        "käsittelymme asteikolla 1 (erittäin tyytymätön) – 5 (erittäin tyytyväinen); myös "
        "kommentti on tervetullut.",
        "et": "Teie juhtum on lahendatud. Täname kannatlikkuse eest ja vabandame veel kord "
        "tekitatud ebamugavuste pärast. Kas kõik sai lahendatud nii, nagu soovisite? Palun "
        "hinnake meie tegevust skaalal 1 (väga rahulolematu) kuni 5 (väga rahul); ootame hea "
        "meelega ka kommentaari.",
        "id": "Kasus Anda telah diselesaikan. Terima kasih atas kesabaran Anda, dan sekali "
        "lagi kami mohon maaf atas ketidaknyamanannya. Apakah semuanya sudah ditangani sesuai "
        "harapan Anda? Mohon beri nilai penanganan kami dari 1 (sangat tidak puas) sampai 5 "
        "(sangat puas); komentar juga sangat kami hargai.",
        "tr": "Talebiniz çözüldü. Sabrınız için teşekkür eder, yaşadığınız sorun için bir kez "
        "daha özür dileriz. Her şey istediğiniz gibi halledildi mi? Lütfen ilgimizi 1 (hiç "
        "memnun değilim) ile 5 (çok memnunum) arasında puanlayın; yorumlarınızı da "
        "memnuniyetle okuruz.",
        "fa": "درخواست شما حل شده است. از صبر و شکیبایی شما سپاسگزاریم و بار دیگر بابت این "
        "مشکل عذرخواهی می‌کنیم. آیا همه چیز مطابق میل شما انجام شد؟ لطفاً نحوه رسیدگی ما را "
        "از ۱ (بسیار ناراضی) تا ۵ (بسیار راضی) امتیاز دهید؛ خوشحال می‌شویم نظرتان را هم "
        "بنویسید.",
        "de": "Ihr Anliegen ist gelöst. Danke für Ihre Geduld, und noch einmal: Es tut uns leid "
        "für die Unannehmlichkeiten. Wurde alles zu Ihrer Zufriedenheit erledigt? Bitte "
        "bewerten Sie unsere Bearbeitung von 1 (sehr unzufrieden) bis 5 (sehr zufrieden); ein "
        "Kommentar ist willkommen.",
        "fr": "Votre demande a été résolue. Merci de votre patience et, encore une fois, toutes "
        "nos excuses pour ce désagrément. Tout a-t-il été réglé à votre satisfaction ? Merci "
        "de noter notre prise en charge de 1 (très insatisfait) à 5 (très satisfait) ; un "
        "commentaire est le bienvenu.",
        "es": "Su caso se ha resuelto. Gracias por su paciencia y, una vez más, disculpe las "
        "molestias. ¿Se resolvió todo a su satisfacción? Valore nuestra gestión del 1 (muy "
        "insatisfecho) al 5 (muy satisfecho); también agradecemos cualquier comentario.",
    },
    "survey_reminder": {
        "en": "A short reminder: we would still like to know whether everything was put right. "
        "Please rate how we handled it from 1 to 5. If something is still wrong, tell us and "
        "we will reopen your case.",
        "fi": "Lyhyt muistutus: haluaisimme yhä tietää, saatiinko kaikki kuntoon. Arvioikaa "
        "käsittelymme asteikolla 1–5. Jos jokin on yhä pielessä, kertokaa siitä, niin avaamme "
        "asianne uudelleen.",
        "et": "Väike meeldetuletus: sooviksime endiselt teada, kas kõik sai korda. Palun "
        "hinnake meie tegevust skaalal 1 kuni 5. Kui midagi on veel valesti, andke teada ja "
        "avame teie juhtumi uuesti.",
        "id": "Sekadar pengingat: kami masih ingin tahu apakah semuanya sudah beres. Mohon beri "
        "nilai penanganan kami dari 1 sampai 5. Jika masih ada yang salah, beri tahu kami dan "
        "kami akan membuka kembali kasus Anda.",
        "tr": "Kısa bir hatırlatma: her şeyin yoluna girip girmediğini hâlâ öğrenmek "
        "istiyoruz. Lütfen ilgimizi 1 ile 5 arasında puanlayın. Hâlâ bir sorun varsa bize "
        "bildirin, talebinizi yeniden açalım.",
        "fa": "یادآوری کوتاه: هنوز مایلیم بدانیم آیا همه چیز درست شده است. لطفاً نحوه رسیدگی "
        "ما را از ۱ تا ۵ امتیاز دهید. اگر هنوز مشکلی هست، به ما بگویید تا پرونده شما را "
        "دوباره باز کنیم.",
        "de": "eine kurze Erinnerung: Wir würden gern wissen, ob alles in Ordnung gebracht "
        "wurde. Bitte bewerten Sie unsere Bearbeitung von 1 bis 5. Falls noch etwas nicht "
        "stimmt, sagen Sie es uns, dann öffnen wir Ihr Anliegen erneut.",
        "fr": "Petit rappel : nous aimerions toujours savoir si tout a bien été réglé. Merci de "
        "noter notre prise en charge de 1 à 5. Si quelque chose ne va toujours pas, dites-le-"
        "nous et nous rouvrirons votre demande.",
        "es": "Un breve recordatorio: todavía nos gustaría saber si todo quedó resuelto. Valore "
        "nuestra gestión del 1 al 5. Si algo sigue mal, díganoslo y reabriremos su caso.",
    },
    "thank_you": {
        "en": "Thank you for your answer and for giving us the chance to put things right. We "
        "are glad it is sorted.",
        "fi": "Kiitos vastauksestanne ja siitä, että annoitte meille mahdollisuuden korjata "
        "asian. Olemme iloisia, että se on nyt kunnossa.",
        "et": "Täname vastuse eest ja selle eest, et andsite meile võimaluse asi heastada. "
        "Meil on hea meel, et see on nüüd korras.",
        "id": "Terima kasih atas jawaban Anda dan atas kesempatan untuk memperbaiki keadaan. "
        "Kami senang semuanya sudah beres.",
        "tr": "Yanıtınız ve durumu düzeltmemize fırsat verdiğiniz için teşekkür ederiz. "
        "Sorunun çözülmesine çok sevindik.",
        "fa": "از پاسخ شما و از اینکه به ما فرصت دادید مشکل را جبران کنیم سپاسگزاریم. "
        "خوشحالیم که مشکل برطرف شده است.",
        "de": "vielen Dank für Ihre Antwort und dafür, dass Sie uns die Gelegenheit gegeben "
        "haben, die Sache in Ordnung zu bringen. Wir freuen uns, dass alles geklärt ist.",
        "fr": "Merci pour votre réponse et de nous avoir donné l'occasion d'arranger les "
        "choses. Nous sommes heureux que tout soit réglé.",
        "es": "Gracias por su respuesta y por darnos la oportunidad de arreglar las cosas. Nos "
        "alegra que todo esté resuelto.",
    },
    "advocacy": {
        "en": "We are delighted that you are happy with how your case was handled. If you "
        "would like to, we would be grateful if you shared your experience where you first "
        "told us about it.",
        "fi": "Olemme iloisia, että olette tyytyväinen tapaan, jolla asianne hoidettiin. Jos "
        "haluatte, olisimme kiitollisia, jos kertoisitte kokemuksestanne siellä, missä alun "
        "perin kerroitte meille asiasta.",
        "et": "Meil on väga hea meel, et jäite juhtumi lahendamisega rahule. Kui soovite, "
        "oleksime tänulikud, kui jagaksite oma kogemust seal, kus meile algselt probleemist "
        "rääkisite.",
        "id": "Kami sangat senang Anda puas dengan cara kasus Anda ditangani. Jika berkenan, "
        "kami akan sangat berterima kasih bila Anda membagikan pengalaman Anda di tempat Anda "
        "pertama kali menyampaikannya kepada kami.",
        "tr": "Talebinizin ele alınış biçiminden memnun kalmanıza çok sevindik. İsterseniz, "
        "deneyiminizi bize ilk ulaştığınız yerde paylaşırsanız çok minnettar oluruz.",
        "fa": "بسیار خوشحالیم که از نحوه رسیدگی به درخواست خود راضی هستید. اگر مایل باشید، "
        "سپاسگزار می‌شویم که تجربه خود را در همان جایی که ابتدا مشکل را با ما در میان "
        "گذاشتید، به اشتراک بگذارید.",
        "de": "wir freuen uns sehr, dass Sie mit der Bearbeitung Ihres Anliegens zufrieden "
        "sind. Wenn Sie möchten, wären wir Ihnen dankbar, wenn Sie Ihre Erfahrung dort teilen, "
        "wo Sie uns zuerst davon erzählt haben.",
        "fr": "Nous sommes ravis que vous soyez satisfait de la façon dont votre demande a été "
        "traitée. Si vous le souhaitez, nous vous serions reconnaissants de partager votre "
        "expérience là où vous nous en avez parlé au départ.",
        "es": "Nos alegra mucho que esté satisfecho con la gestión de su caso. Si lo desea, le "
        "agradeceríamos que compartiera su experiencia allí donde nos lo contó por primera vez.",
    },
}

KINDS: tuple[str, ...] = tuple(_BODY)

_MAX_NAME = 60
# Not a person's name: an address, a handle, a phone number or a ticket id.
_NOT_A_NAME = re.compile(r"[@/\\:<>{}\[\]#\d]")


@dataclass(frozen=True, slots=True)
class Rendered:
    language: str
    text: str


def language_for(language: str | None) -> str:
    """The template language for a detected language code (``en`` when we have none)."""
    code = (language or "").strip().lower().replace("_", "-").split("-", 1)[0]
    code = _ALIASES.get(code, code)
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def usable_name(name: str | None) -> str | None:
    """A name we can greet someone with, or None (never a handle, address or number)."""
    if not name:
        return None
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > _MAX_NAME or _NOT_A_NAME.search(cleaned):
        return None
    return cleaned


def first_name(name: str | None) -> str | None:
    cleaned = usable_name(name)
    return cleaned.split(" ", 1)[0] if cleaned else None


def format_when(when: datetime) -> str:
    """Unambiguous in every language: ISO date and 24-hour time in UTC."""
    return when.strftime("%Y-%m-%d %H:%M UTC")


def render(
    kind: str,
    language: str | None,
    *,
    customer_name: str | None = None,
    assignee_name: str | None = None,
    next_update: datetime | None = None,
) -> Rendered:
    """The message text of ``kind`` for one customer, in their language when we have it."""
    if kind not in _BODY:
        raise ValueError(f"no message template for {kind!r}")
    lang = language_for(language)
    name = usable_name(customer_name)
    with_name, without_name = _GREETING[lang]
    greeting = with_name.format(name=name) if name else without_name
    assignee = first_name(assignee_name)
    body = _BODY[kind][lang].format(
        assignee=assignee or _OUR_TEAM[lang],
        next_update=format_when(next_update) if next_update else "",
    )
    text = f"{greeting}\n\n{body}"
    if assignee:
        text += f"\n\n{assignee}"
    return Rendered(language=lang, text=text)
