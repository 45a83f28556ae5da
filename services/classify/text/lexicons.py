# ruff: noqa: RUF001  (non-Latin letters are the point of a multilingual lexicon)
"""Hand-written cue lexicons, nine languages (en fi et id tr fa de fr es).

Written for this project (no lexicon package was copied). Terms are matched on
normalised text (lower case, Latin diacritics folded, Turkish dotless i folded, Persian
yeh/kaf unified, ZWNJ as a space), so they may be written with their accents. A term
ending in ``*`` matches any word that starts with it (stems for Finnish, Estonian,
Turkish inflection); any other term must match whole words. ``|`` separates terms.

Cues:
  legal      lawyers, courts, suing, regulators, police reports
  safety     threats of harm, and danger to people (fire, injury, shock, poisoning)
  churn      cancelling, leaving, "never again", switching to a competitor
  abuse      profanity and insults
  manager    asking for a manager or someone senior
  anger      explicit anger words (also the keyword-only baseline for ``anger``)
  upset      explicit dissatisfaction words (the keyword-only baseline for ``upset``)
  freebie    asking for compensation, vouchers, something free
  exposure   threatening to go public (social media, press, reviews)
  troll      mockery markers
  cat_*      the complaint's kind (see ``CATEGORY_CUES``)
"""

from __future__ import annotations

CATEGORY_CUES = (
    "cat_defective_product",
    "cat_out_of_stock",
    "cat_delivery",
    "cat_billing_refund",
    "cat_staff_behaviour",
    "cat_lack_of_follow_up",
    "cat_account_access",
)

LEXICONS: dict[str, dict[str, str]] = {
    "en": {
        "legal": "lawyer*|attorney*|solicitor*|court|courts|sue|suing|sued|lawsuit*|legal action"
        "|legal proceedings|take legal|small claims|class action|regulator*|ombudsman"
        "|trading standards|consumer protection|better business bureau|bbb|litigat*"
        "|see you in court|cfpb|ftc|attorney general|report you to|file a complaint with"
        "|police report",
        "safety": "kill you|kill him|kill her|kill them|kill everyone|i will kill|gonna kill"
        "|going to kill|shoot|shooting|bomb*|blow up|burn down|burn your|set fire|hurt you"
        "|hurt someone|beat you up|come after you|find where you live|you will regret"
        "|you'll regret|watch your back|gun|guns|knife|weapon*|caught fire|on fire|explod*"
        "|electric shock|electrocut*|injur*|burned my|burnt my|hospital*|choking|poison*"
        "|carbon monoxide|sparks|unsafe|dangerous|hazard*|suicid*|kill myself",
        "churn": "cancel*|close my account|closing my account|never again|never buy|never order"
        "|never use|never shop|switch to|switching to|switched to|go elsewhere"
        "|going elsewhere|take my business|lost a customer|lost me as a customer"
        "|unsubscrib*|terminate my|end my contract|leaving you|done with you|competitor*"
        "|won't be back|will not be back|never coming back|stop using|last time i",
        "abuse": "idiot*|stupid|moron*|dumb|fuck*|f*ck|shit|shitty|bullshit|bastard*|asshole*"
        "|bitch*|dickhead*|scum*|cunt*|retard*|go to hell|shut up|wtf|stfu|piece of shit"
        "|clowns|morons|jackass*",
        "manager": "manager|managers|supervisor*|your boss|someone in charge|person in charge"
        "|someone senior|escalate this|ceo|head of customer",
        "anger": "angry|furious|outrag*|livid|pissed|fed up|sick of|sick and tired"
        "|unacceptable|ridiculous|disgust*|infuriat*|enraged|rage|mad|hate|how dare"
        "|annoy*|irritat*|appalled|appalling|disgrace*",
        "upset": "disappoint*|terrible|awful|horrible|worst|bad|poor|not happy|unhappy"
        "|not working|broken|useless|waste|rip off|ripoff|scam*|complain*|sad|upset"
        "|frustrat*|dissatisfied|shame",
        "freebie": "compensat*|for free|free of charge|voucher*|gift card*|coupon*|discount*"
        "|for my trouble|make it up to me|goodwill gesture|what will you give",
        "exposure": "go public|tell everyone|social media|twitter|facebook|instagram|tiktok"
        "|youtube|my followers|bad review|1 star|one star|newspaper*|journalist*|the press"
        "|the media|go viral|trustpilot",
        "troll": "lol|lmao|rofl|haha*|cry about it|ratio|clown*",
        "cat_defective_product": "broken|doesn't work|does not work|not working"
        "|stopped working|defect*|faulty|damaged|cracked|malfunction*|quality|leak*"
        "|fell apart|won't turn on|doesn't turn on|dead on arrival|missing parts",
        "cat_out_of_stock": "out of stock|backorder*|back order|back-order*|sold out"
        "|unavailable|not available|in stock|restock*|preorder*|pre-order*",
        "cat_delivery": "deliver*|shipping|shipment|shipped|courier*|parcel*|package*"
        "|tracking|not arrived|hasn't arrived|never arrived|didn't arrive|never received"
        "|lost in transit|postman|dispatch*|wrong address",
        "cat_billing_refund": "refund*|charge|charged|charges|bill|billing|billed|invoice*"
        "|payment*|paid twice|double charged|overcharg*|fee|fees|money back|price"
        "|reimburs*|credit card|debit*|my money",
        "cat_staff_behaviour": "rude*|impolite|unfriendly|unhelpful|customer service|staff"
        "|employee*|agent|agents|representative*|cashier*|clerk*|shouted at|yelled at"
        "|attitude|disrespect*|condescending|hung up|clueless",
        "cat_lack_of_follow_up": "no response|no reply|no answer|never heard back"
        "|never got back|still waiting|no one called|nobody called|promised to call"
        "|you promised|was promised|were supposed to|ignored|ignoring|no update|follow up"
        "|several times|third time|again and again|heard nothing",
        "cat_account_access": "login|log in|sign in|password*|locked out|account locked"
        "|can't access|cannot access|access my account|two-factor|2fa|verification code"
        "|reset link|username|hacked",
    },
    "fi": {
        "legal": "asianajaj*|lakimie*|juristi*|oikeuteen|oikeudessa|oikeusteitse|käräjä*"
        "|haastan|haastaa oikeuteen|kuluttajariita*|kuluttajaneuvo*|kuluttaja-asiamie*"
        "|kuluttajansuoja*|poliisi*|rikosilmoitu*|tutkintapyyn*|lakitoimisto*|kanteen",
        "safety": "tapan|tapamme|tappaa teidät|tappaa sinut|pommi*|räjäytä*|räjähti|poltan"
        "|sytytän|syttyi palamaan|tulipalo*|aseen|aseella|puukko*|veitse*|satutan"
        "|vahingoitan|loukkaantu*|sähköisku*|palovamm*|sairaala*|vaarallinen|hengenvaar*"
        "|itsemurh*|kostan|kadutte vielä",
        "churn": "irtisano*|perun|peruutan|peruuta*|peruutus*|lopetan asiakkuu*|lopetan tilau*"
        "|en enää ikinä|ei enää ikinä|en ikinä enää|en enää koskaan|viimeinen kerta"
        "|vaihdan|siirryn|kilpailija*|lopetan sopimuk*|suljen tili*|en osta enää|hyvästi",
        "abuse": "vittu*|perkele*|saatana*|paska*|idiootti*|idiootit|tyhmä*|kusipää*|mulkku*"
        "|huora*|ääliö*|runkkari*|jumalauta|haista vittu|pelle|pellet|tunari*|apina*",
        "manager": "esimie*|johtaja*|päällikkö*|pomo*|ylempi taho|toimitusjohtaja*|vastaava",
        "anger": "vihai*|raivo*|suuttu*|suutu*|vitutta*|ärsyttä*|ärsyyntyn*|kyllästyny*"
        "|kyllästyttää|pöyristy*|törkeä*|käsittämätön*|naurettav*|vihaan|inhoan|kiukku*"
        "|kiukuttaa",
        "upset": "pettyny*|pettymys*|huono*|surkea*|kamala*|kauhea*|ei toimi|rikki|valitus*"
        "|valitan|harmittaa|harmi|turhautu*|surullinen|paha mieli",
        "freebie": "korvau*|ilmai*|lahjakortti*|alennu*|alekoodi*",
        "exposure": "somessa|someen|sosiaalise* median|twitter*|facebook*|instagram*|tiktok*"
        "|lehdistö*|iltalehte*|ilta-sanom*|toimittaj*|arvostelu*|julkisuute*|kerron kaikille",
        "troll": "lol|haha*|hah|pelle*",
        "cat_defective_product": "rikki|rikkinäi*|viallinen|viallise*|vika|vikaa|vian"
        "|ei toimi|lakannut toimimasta|hajosi|hajonnut|halkei*|vuotaa|laatu*",
        "cat_out_of_stock": "loppu varastosta|loppunut|ei varastossa|varastossa"
        "|jälkitoimitu*|tilapäisesti loppu|ei saatavilla|saatavilla",
        "cat_delivery": "toimitu*|toimitus|paketti*|paketin|lähetys*|lähety*|kuriiri*|posti*"
        "|seuranta*|ei ole saapunut|ei saapunut|kuljettaja*|kuljetus*|nouto*",
        "cat_billing_refund": "lasku*|laskutu*|veloitu*|veloitti*|veloitettiin|maksu*|maksoin"
        "|palautus*|rahat takaisin|rahani|hinta*|hyvitys*|hyvity*|kaksi kertaa",
        "cat_staff_behaviour": "epäkohtelia*|töykeä*|tyly*|asiakaspalvelu*|myyjä*"
        "|henkilökun*|työntekijä*|asenne*|huusi|kohtelu*|kohteli*|välinpitämätö*|ylimielis*",
        "cat_lack_of_follow_up": "ei vastausta|ei vastattu|ei ole vastattu|ei vastannut"
        "|kukaan ei vastaa|en ole kuullut|odotan yhä|odotan edelleen|edelleen odotan"
        "|vieläkin odotan|lupasitte|luvattiin|luvattu|ei soitettu|ei ole soitettu"
        "|kolmannen kerran|monta kertaa|jo monesti|ei ole palattu|ei palattu",
        "cat_account_access": "kirjautu*|salasana*|tunnukse*|tunnus|tili lukittu|lukittu"
        "|en pääse tilille|käyttäjätunnu*|vahvistuskoodi*|hakkeroi*|tilini",
    },
    "et": {
        "legal": "advokaa*|jurist*|kohtusse|kohtus|kohtule|kohtuasi*|kohtuhagi*|kohtutee*"
        "|hagi*|tarbijakaitse*|tarbijavaidlus*|politsei*|õiguskantsle*|seadusega vastuolus"
        "|õigusabi*",
        "safety": "tapan|tapame|tappa|pomm*|lasen õhku|lasen maha|süütan|põletan|tulekahju*"
        "|süttis|plahvat*|relv*|nuga|noaga|vigastu*|vigastasi*|haigla*|elektrilöö*|ohtlik*"
        "|enesetapp*|kahetsete veel|teen teile haiget|haiget teha",
        "churn": "tühista*|loobun|lõpetan lepingu|lõpetan lepin*|lõpetan tellimu*|sulgen konto"
        "|mitte kunagi enam|ei iial enam|enam kunagi|viimane kord|lähen üle|vahetan"
        "|konkurent*|lahkun|ütlen lepingu üles|ei osta enam",
        "abuse": "idioot*|idiood*|loll*|debiil*|kurat|kuradi*|perse*|sitt*|pask*|türa*|lits*"
        "|värdjas*|nõme*|munn*|raisk*|mölakas*",
        "manager": "juhataja*|juhiga|juhile|juhti|ülemus*|vastutav isik|tegevjuht*|juhtkond*",
        "anger": "vihane|vihas*|raev*|marus|vihastab|vihastan|vihastas|ärritu*|ärritav*"
        "|tüdinud|villand|vastik*|jube*|skandaalne|naeruväärne|vihkan|pahane",
        "upset": "pettu*|pettumus*|halb|halva*|kohutav*|õudne|ei tööta|katki|kaebus*|kaeban"
        "|kurb|rahulolematu*",
        "freebie": "hüvitis*|kompensats*|tasuta|kinkekaart*|allahindlus*|soodus*",
        "exposure": "sotsiaalmeedia*|facebook*|twitter*|instagram*|tiktok*|ajakirjan*|meedia*"
        "|arvustus*|kõigile rääkida|avalikust*",
        "troll": "lol|haha*|kloun*",
        "cat_defective_product": "katki|ei tööta|lakkas töötamast|defekt*|praak*|vigane"
        "|vigase*|rikkis|rikki|läks katki|kvaliteet*|lekib",
        "cat_out_of_stock": "otsas|laost otsas|laos|pole laos|ei ole laos|järeltellimu*"
        "|läbi müüdud|ei ole saadaval|saadaval",
        "cat_delivery": "tarne*|tarni*|kohaletoimeta*|saadetis*|pakk|paki|pakki|pakiautomaa*"
        "|kulleri*|kuller|omniva|postiga|postkontor*|ei ole kohale jõudnud"
        "|pole kohale jõudnud|jälgimis*|saatmis*",
        "cat_billing_refund": "arve*|arveld*|makse*|maksin|raha tagasi|tagasimakse*|hinna*"
        "|hind|tasu|kahekordselt|topelt|kaardilt|võeti raha|tagastus*",
        "cat_staff_behaviour": "ebaviisaka*|ebaviisakas|ebasõbralik*|klienditeenindus*"
        "|teenindaja*|töötaja*|personal*|käitumi*|ükskõiksu*|ülbe*|karjus|hoolimatu*",
        "cat_lack_of_follow_up": "vastust pole|pole vastanud|ei ole vastanud|ei vastanud"
        "|ei vasta|ootan siiani|ootan ikka veel|siiani ootan|lubasite|lubati|ei helistanud"
        "|keegi ei helistanud|mitu korda|kolmandat korda|ei ole tagasi võtnud",
        "cat_account_access": "sisselogimi*|sisse logida|logida sisse|parool*|konto lukus"
        "|lukus|kasutajanim*|kinnituskood*|häkk*|ei pääse kontole|ei pääse ligi|kontole",
    },
    "id": {
        "legal": "pengacara*|kuasa hukum|jalur hukum|ranah hukum|proses hukum|menuntut|tuntut*"
        "|gugat*|menggugat|pengadilan|lapor polisi|melapor ke polisi|laporkan ke polisi"
        "|polisi|ylki|bpkn|ojk|somasi|advokat*|pidana*|perdata",
        "safety": "bunuh|membunuh|bom|ledak*|meledak|bakar*|kebakaran|terbakar|senjata*|pisau"
        "|tembak*|melukai|terluka|cedera|rumah sakit|kesetrum|tersetrum|sengatan listrik"
        "|bahaya|berbahaya|keracunan|racun*|bunuh diri|awas kau|awas kamu|habisi*",
        "churn": "berhenti langganan|berhenti berlangganan|berhenti pakai|berhenti menggunakan"
        "|batal*|membatalkan|pembatalan|tutup akun|menutup akun|tidak akan lagi"
        "|gak akan lagi|ga akan lagi|tidak mau lagi|gak mau lagi|ogah lagi|kapok"
        "|terakhir kali|pindah ke|beralih ke|ganti ke|kompetitor|pesaing|uninstall"
        "|hapus aplikasi",
        "abuse": "anjing|anjir|bangsat|babi|goblok|goblog|tolol|bego|bodoh|kampret|brengsek"
        "|bajingan|tai|taik|kontol|memek|ngentot|jancuk|jancok|asu|keparat|sialan|setan"
        "|idiot|kurang ajar|monyet",
        "manager": "manajer|manager|atasan|pimpinan|supervisor|direktur|bos|penanggung jawab"
        "|kepala cabang",
        "anger": "marah|kesal|kesel|geram|emosi|murka|jengkel|sebal|sebel|muak|benci"
        "|keterlaluan|kurang ajar|ngamuk|naik darah|dongkol",
        "upset": "kecewa*|mengecewakan|buruk|jelek|parah|lambat|tidak puas|gak puas|ga puas"
        "|rusak|kotor|payah|sedih|nyesel|menyesal|komplain|keluhan|tidak enak",
        "freebie": "kompensasi|ganti rugi|gratis|voucher|diskon|potongan harga|cashback|hadiah",
        "exposure": "viral*|viralkan|sosmed|media sosial|twitter|facebook|instagram|tiktok"
        "|youtube|wartawan|ulasan|review|bintang satu|bintang 1|sebarkan",
        "troll": "wkwk*|haha*|lol|badut*",
        "cat_defective_product": "rusak|cacat|tidak berfungsi|gak berfungsi|tidak bisa dipakai"
        "|tidak nyala|gak nyala|mati total|pecah|retak|bocor|kualitas|error|eror|macet",
        "cat_out_of_stock": "stok habis|stok kosong|kehabisan|habis|pre order|preorder|inden"
        "|tidak tersedia|tersedia|restock",
        "cat_delivery": "pengiriman|kirim*|dikirim|kurir|paket|resi|ekspedisi|belum sampai"
        "|belum datang|belum diterima|nyasar|alamat|ongkir",
        "cat_billing_refund": "refund|pengembalian dana|uang kembali|tagihan|bayar*|pembayaran"
        "|dibayar|saldo|terpotong|dipotong|biaya|harga|transfer|dobel|double|tarif|denda|pulsa",
        "cat_staff_behaviour": "pelayanan|layanan|cs|customer service|petugas|karyawan|pegawai"
        "|staf|kasir|satpam|sopir|driver|tidak ramah|jutek|judes|kasar|sombong|cuek"
        "|membentak|dibentak|tidak sopan|gak sopan",
        "cat_lack_of_follow_up": "tidak ada respon|gak ada respon|ga ada respon|tidak direspon"
        "|tidak dibalas|gak dibalas|belum dibalas|tidak ada balasan|belum ada kabar"
        "|tidak ada kabar|masih menunggu|janji*|dijanjikan|berkali-kali|berkali kali"
        "|tindak lanjut|dicuekin|diabaikan",
        "cat_account_access": "akun|login|masuk akun|kata sandi|password|sandi|terblokir"
        "|diblokir|kode otp|otp|verifikasi|dibobol|diretas|hack*|username",
    },
    "tr": {
        "legal": "avukat*|mahkeme*|dava*|savcılı*|suç duyuru*|tüketici hakem*|tüketici mahkeme*"
        "|btk|bddk|yasal yol*|hukuki*|hukuk*|noter*|ihtarname*",
        "safety": "öldürürüm|öldürece*|öldür*|bomba*|patlat*|patladı|yakarım|yakacağım"
        "|ateşe veri*|yangın*|alev ald*|silah*|bıçak*|vururum|yaralan*|yaraladı|hastane*"
        "|elektrik çarp*|tehlikeli|zehirlen*|intihar*|canını yakarım|pişman olacaksınız",
        "churn": "iptal*|aboneliğimi iptal|hesabımı kapat*|bir daha asla|bir daha almam"
        "|bir daha almayacağım|bir daha kullanmam|asla bir daha|son kez|son kere|geçiyorum"
        "|geçeceğim|rakip*|başka firmaya|vazgeçtim|sözleşmeyi feshed*|fesih*|numara taşı*"
        "|taşıyacağım",
        "abuse": "aptal*|salak*|gerizekalı*|geri zekalı*|ahmak*|şerefsiz*|orospu*|piç|piçler"
        "|siktir*|sikerim|sikeyim|amk|aq|amına|yavşak*|pezevenk*|dangalak*|hıyar*|ibne*"
        "|kahrolsun|beyinsiz*|haysiyetsiz*|it herif|namussuz*",
        "manager": "müdür*|yönetici*|amir*|sorumlu*|üst yönetim*|genel müdür*|yetkili*",
        "anger": "sinir*|öfke*|kızgın*|kızdım|çıldır*|delirece*|rezalet|rezil*|skandal*"
        "|bıktım|bıktık|yeter artık|nefret*|utanç verici|saygısız*|kabul edilemez|berbat",
        "upset": "hayal kırıklı*|memnun değil*|kötü*|berbat|rezalet|çalışmıyor|bozuk*|bozuldu"
        "|şikayet*|üzgün*|mağdur*|perişan|maalesef",
        "freebie": "tazminat*|telafi*|ücretsiz|bedava|hediye*|indirim*|kupon*|para puan",
        "exposure": "sosyal medya*|twitter*|instagram*|facebook*|tiktok*|şikayetvar*|basın*"
        "|gazete*|herkese duyur*|paylaşacağım",
        "troll": "lol|haha*|sjsj*|palyaço*",
        "cat_defective_product": "bozuk*|bozuldu|arızalı*|arıza*|çalışmıyor|kırık*|kırıldı"
        "|çatlak*|hasarlı*|defolu*|kalitesiz*|sızdır*|açılmıyor",
        "cat_out_of_stock": "stokta yok|stok*|tükendi|tükenmiş|ön sipariş*|mevcut değil"
        "|temin edilem*|gelince haber",
        "cat_delivery": "kargo*|teslimat*|teslim*|gönderi*|kurye*|paket*|takip numara*"
        "|ulaşmadı|gelmedi|hala gelmedi|adres*|dağıtım*|sevkiyat*",
        "cat_billing_refund": "iade*|fatura*|ücret*|paramı|param|para iadesi|ödeme*|ödedim"
        "|çekildi|kesildi|kartımdan|iki kez|fiyat*|borç*|tahsil*",
        "cat_staff_behaviour": "kaba|kabalık*|saygısız*|ilgisiz*|müşteri hizmetleri"
        "|çağrı merkezi*|personel*|çalışan*|temsilci*|kasiyer*|tavır*|davranış*|bağırdı"
        "|yüzüme kapattı|umursamaz*",
        "cat_lack_of_follow_up": "dönüş yapılmadı|dönüş yok|geri dönüş*|cevap yok"
        "|cevap vermiyor*|yanıt yok|yanıt verilmedi|hala bekliyorum|halen bekliyorum"
        "|bekliyorum|söz verdiniz|söz verildi|aranmadım|kimse aramadı|defalarca|kaç kez"
        "|kaç kere|ilgilenilmedi|ilgilenen yok",
        "cat_account_access": "şifre*|giriş yap*|oturum aç*|hesabım*|hesabıma giremiyorum"
        "|kilitlendi|doğrulama kodu|sms kodu|hacklendi|kullanıcı adı",
    },
    "fa": {
        "legal": "وکیل|وکیلم|دادگاه|از شما شکایت|شکایت قانونی|پیگرد قانونی|پیگیری قانونی"
        "|اقدام قانونی|مراجع قضایی|مرجع قضایی|دادسرا|پلیس|حمایت از مصرف کننده"
        "|سازمان حمایت|تعزیرات|شکواییه",
        "safety": "می کشمت|میکشمت|بکشم|می کشم|کشتن|بمب|منفجر|آتش می زنم|آتش زدن|آتش گرفت"
        "|آتیش|اسلحه|چاقو|زخمی|آسیب دید|مجروح|بیمارستان|برق گرفت|خطرناک|مسموم|خودکشی"
        "|تلافی|پشیمون می شی|پشیمان می شوید",
        "churn": "لغو|کنسل|حسابم را ببندید|دیگر هرگز|دیگه هیچوقت|هرگز دوباره|دیگه نمی خرم"
        "|دیگر نمی خرم|آخرین بار|رقیب|رقبا|میرم سراغ|می روم سراغ|عوض می کنم|خداحافظ",
        "abuse": "احمق|احمقها|احمق ها|بیشعور|بی شعور|خر|الاغ|کثافت|آشغال|لعنتی|لعنت|گمشو"
        "|خفه شو|بی ناموس|حرومزاده|حرامزاده|کصکش|کس کش|جنده|عوضی|بی شرف|پدرسوخته|گه",
        "manager": "مدیر|مدیریت|مسئول|سرپرست|رئیس|مافوق",
        "anger": "عصبانی|عصبی|خشمگین|خشم|کلافه|شاکی|اعصاب|متنفرم|نفرت|مسخره|افتضاح"
        "|غیرقابل قبول|بیزارم",
        "upset": "ناراضی|ناراحت|بد|افتضاح|خراب|کار نمی کند|کار نمیکنه|شکایت|ناامید|متاسفانه"
        "|ضعیف|بدترین|غمگین",
        "freebie": "غرامت|جبران|رایگان|مجانی|تخفیف|کارت هدیه|هدیه|کد تخفیف",
        "exposure": "اینستاگرام|توییتر|تلگرام|شبکه های اجتماعی|فضای مجازی|رسانه|خبرنگار"
        "|همه بدانند|پخش می کنم",
        "troll": "خخخ*|هههه*|دلقک*",
        "cat_defective_product": "خراب|معیوب|کار نمی کند|کار نمیکنه|شکسته|ترک|نشتی|کیفیت"
        "|ایراد|مشکل فنی|سوخت",
        "cat_out_of_stock": "ناموجود|موجود نیست|موجودی|تمام شده|پیش سفارش|تامین نشده|موجود شد",
        "cat_delivery": "ارسال|تحویل|پست|پیک|مرسوله|بسته|کد رهگیری|رهگیری|نرسیده|نرسید"
        "|دیر رسید|آدرس",
        "cat_billing_refund": "بازپرداخت|استرداد|پول|پولم|وجه|کسر شد|کسر|قبض|صورتحساب|فاکتور"
        "|پرداخت|دوبار|قیمت|هزینه|شارژ",
        "cat_staff_behaviour": "بی ادب|بی ادبی|بد اخلاق|بداخلاق|برخورد|رفتار|کارمند|کارکنان"
        "|پرسنل|پشتیبانی|اپراتور|فروشنده|داد زد|توهین",
        "cat_lack_of_follow_up": "جواب نمی دهند|جواب نمیدن|جوابی نگرفتم|پاسخی|پاسخ نداده"
        "|هنوز منتظرم|پیگیری|قول دادید|قول داده|وعده|چند بار|بارها|کسی زنگ نزد"
        "|تماس نگرفتند",
        "cat_account_access": "حساب کاربری|رمز عبور|رمز|پسورد|ورود|وارد شوم|لاگین|مسدود|قفل"
        "|کد تایید|هک",
    },
    "de": {
        "legal": "anwalt*|anwält*|rechtsanwalt*|gericht*|verklage*|klage einreichen|klage erheben"
        "|rechtliche schritte|rechtlichen schritte*|juristische schritte|verbraucherzentrale*"
        "|verbraucherschutz*|schlichtungsstelle*|bundesnetzagentur|bafin|anzeige erstatten"
        "|strafanzeige*|polizei*|abmahnung*|mahnverfahren",
        "safety": "umbringen|bringe euch um|bring dich um|abstechen|erschieße*|erschieß*"
        "|abknallen|bombe*|sprengen|in die luft|anzünden|abfackeln|brandgefahr|brannte"
        "|in flammen|feuer gefangen|explodiert*|waffe*|messer|verletz*|krankenhaus*"
        "|stromschlag*|gefährlich*|vergift*|selbstmord*|suizid*|das werdet ihr bereuen"
        "|ihr werdet es bereuen",
        "churn": "kündig*|storniere*|stornier*|storno*|konto schließen|nie wieder"
        "|niemals wieder|zum letzten mal|wechsle zu|wechsel zu|wechseln zu|zur konkurrenz"
        "|konkurrenz|anbieterwechsel|vertrag beenden|abo beenden|abbestellen",
        "abuse": "idiot*|arschloch*|arsch|scheiß*|scheiss*|dumm*|blöd*|vollidiot*|wichser*"
        "|hurensohn*|fick*|verpiss*|penner*|depp*|trottel*|missgeburt*|halt die fresse"
        "|schlampe*|spast*|bastard*",
        "manager": "vorgesetzte*|chef|chefin|geschäftsführ*|geschäftsleitung|teamleiter*"
        "|filialleiter*|verantwortliche*|manager*|beschwerdestelle",
        "anger": "wütend|wut|stinksauer|sauer|verärgert|ärger*|zorn*|empört|unverschämt*"
        "|frechheit|lächerlich|unzumutbar|inakzeptabel|hasse|hass|es reicht|reicht mir"
        "|die nase voll|genervt|nervt",
        "upset": "enttäusch*|schlecht*|schrecklich*|furchtbar*|katastroph*|mangelhaft"
        "|unzufrieden*|funktioniert nicht|kaputt|beschwerde*|beschwere|traurig|frustriert*"
        "|ärgerlich",
        "freebie": "entschädigung*|kompensation*|kostenlos*|gratis|gutschein*|rabatt*"
        "|gutschrift*|kulanz*",
        "exposure": "soziale medien|social media|twitter|facebook|instagram|tiktok|youtube"
        "|presse|zeitung*|journalist*|öffentlich*|bewertung*|trustpilot|allen erzählen",
        "troll": "lol|haha*|clown*",
        "cat_defective_product": "kaputt*|defekt*|funktioniert nicht|geht nicht|beschädigt*"
        "|gebrochen|gerissen|mangelhaft|qualität*|undicht|fehlerhaft*|schaltet sich nicht",
        "cat_out_of_stock": "nicht vorrätig|nicht auf lager|auf lager|ausverkauft"
        "|nicht lieferbar|nachbestell*|vorbestell*|rückstand|nicht verfügbar|verfügbar",
        "cat_delivery": "liefer*|versand*|sendung*|paket*|zusteller*|kurier*|dhl|hermes"
        "|sendungsverfolgung|nicht angekommen|nie angekommen|noch nicht da|nicht erhalten"
        "|zustellung*|spedition*",
        "cat_billing_refund": "rechnung*|abbuchung*|abgebucht|zahlung*|bezahlt|erstattung*"
        "|rückerstattung*|geld zurück|mein geld|gebühr*|doppelt|preis*|lastschrift*"
        "|überweisung*|kosten",
        "cat_staff_behaviour": "unfreundlich*|unhöflich*|kundenservice|kundendienst*"
        "|mitarbeiter*|personal|verkäufer*|angestellte*|servicemitarbeiter*|hotline"
        "|angeschrien|angeschnauzt|arrogant*|inkompetent*|respektlos*|aufgelegt|verhalten",
        "cat_lack_of_follow_up": "keine antwort|keine rückmeldung|nie zurückgerufen"
        "|warte immer noch|immer noch keine|versprochen|zugesagt|mehrmals|mehrfach"
        "|zum dritten mal|ignoriert*|nichts gehört|nicht gemeldet|keine reaktion",
        "cat_account_access": "login|einloggen|anmelden|anmeldung|passwort*|kennwort*"
        "|konto gesperrt|gesperrt|zugang*|zugriff*|benutzername*|bestätigungscode*|gehackt"
        "|zwei faktor",
    },
    "fr": {
        "legal": "avocat*|tribunal*|tribunaux|poursuivre|poursuites judiciaires|en justice"
        "|action en justice|porter plainte|déposer plainte|dépôt de plainte|procès"
        "|juridique*|médiateur*|dgccrf|ufc|association de consommateurs|huissier*"
        "|mise en demeure|police|gendarmerie",
        "safety": "tuer|vous tuer|te tuer|bombe*|faire sauter|exploser|explosé|brûler*"
        "|mettre le feu|incendie*|pris feu|arme|armes|couteau*|blessé*|blesser|blessure*"
        "|hôpital*|électrocut*|dangereux|dangereuse|empoisonn*|intoxication|suicide"
        "|vous allez le regretter|tu vas le regretter|casser la gueule",
        "churn": "résilier|résili*|annuler|annul*|fermer mon compte|clôturer mon compte"
        "|plus jamais|jamais plus|dernière fois|je change de|je passe chez|passer chez"
        "|concurrent*|désabonn*|désinscri*|vous quitter|quitter votre",
        "abuse": "connard*|connasse*|con|cons|conne|connes|putain*|merde*|salaud*|salope*"
        "|enculé*|abruti*|crétin*|imbécile*|idiot*|débile*|ta gueule|nique*|fils de pute"
        "|bouffon*|pute|putes|bordel",
        "manager": "responsable*|supérieur*|directeur*|directrice|manager|chef|hiérarchie"
        "|la direction",
        "anger": "en colère|colère|furieux|furieuse|énervé*|enrag*|scandal*|inadmissible"
        "|inacceptable|honteux|honte|ras le bol|ras-le-bol|marre|ridicule|exaspér*|agacé*"
        "|déteste|haine|insupportable",
        "upset": "déçu*|déception|mauvais*|nul|nulle|horrible*|affreux|catastroph*|lamentable"
        "|pire|ne fonctionne pas|ne marche pas|mécontent*|insatisfait*|réclamation*|triste"
        "|frustr*",
        "freebie": "dédommagement*|compensation*|indemnisation*|indemnité*|gratuit*"
        "|bon d'achat|bon de réduction|réduction*|geste commercial|carte cadeau",
        "exposure": "réseaux sociaux|twitter|facebook|instagram|tiktok|youtube|presse"
        "|journalist*|médias|laisser un avis|avis négatif|mauvais avis|trustpilot"
        "|faire le buzz",
        "troll": "lol|mdr|ptdr|haha*|clown*",
        "cat_defective_product": "cassé*|défectueu*|en panne|panne*|ne fonctionne pas"
        "|ne marche pas|ne marche plus|ne fonctionne plus|abîmé*|endommagé*|fissur*"
        "|qualité|fuite*|défaut*|ne s'allume pas",
        "cat_out_of_stock": "rupture de stock|en rupture|plus en stock|en stock|stock"
        "|indisponible*|pas disponible|réapprovisionn*|précommande*|épuisé*",
        "cat_delivery": "livraison*|livreur*|pas été livré|jamais livré|colis|expédi*|envoi*"
        "|transporteur*|chronopost|colissimo|la poste|numéro de suivi|pas reçu|jamais reçu"
        "|toujours pas reçu|pas arrivé|retard*",
        "cat_billing_refund": "rembours*|factur*|prélèvement*|prélevé*|débit*|paiement*|payé*"
        "|frais|prix|tarif*|deux fois|argent|mon argent|carte bancaire|trop perçu|abonnement",
        "cat_staff_behaviour": "impoli*|désagréable*|irrespectueu*|service client*"
        "|conseiller*|conseillère*|vendeu*|employé*|personnel|accueil|agent|agents"
        "|hôtesse|méprisant*|hautain*|agressi*|raccroché*|attitude|comportement*"
        "|incompétent*",
        "cat_lack_of_follow_up": "aucune réponse|pas de réponse|sans réponse|jamais rappelé*"
        "|personne ne|j'attends toujours|toujours en attente|j'attends encore|promis"
        "|promesse*|plusieurs fois|à plusieurs reprises|relance*|ignor*|sans nouvelles"
        "|aucun retour|pas de retour|pas de suivi",
        "cat_account_access": "connexion|me connecter|se connecter|mot de passe|identifiant*"
        "|compte bloqué|bloqué|accès|accéder|code de vérification|piraté*"
        "|double authentification|mon compte",
    },
    "es": {
        "legal": "abogado*|abogada*|demanda*|denuncia*|tribunal*|juzgado*|juicio"
        "|acciones legales|acción legal|medidas legales|vía judicial|profeco"
        "|oficina de consumo|consumidores|facua|ocu|defensa del consumidor|policía"
        "|hoja de reclamaciones",
        "safety": "matar|te mato|los mato|os mato|voy a matar|bomba*|explot*|explosión|quemar"
        "|incendi*|prender fuego|arma|armas|pistola|cuchillo|herid*|lesion*|hospital*"
        "|descarga eléctrica|electrocut*|peligros*|intoxicaci*|envenen*|suicid*"
        "|se van a arrepentir|te vas a arrepentir",
        "churn": "cancelar|cancel*|dar de baja|darme de baja|la baja|cerrar mi cuenta"
        "|nunca más|jamás|nunca vuelvo|no vuelvo|última vez|me cambio a|cambiarme a"
        "|me voy con|la competencia|competencia|rescind*|no volveré",
        "abuse": "idiota*|imbécil*|estúpid*|pendejo*|cabrón*|cabrones|gilipolla*|mierda*"
        "|puta|putas|puto|putos|hijo de puta|hijos de puta|joder|jodido*|coño|carajo"
        "|maldito*|inútiles|payaso*|basura|chinga*|pinche*|culero*|mamón|tarado*|subnormal*",
        "manager": "gerente*|supervisor*|encargado*|encargada*|jefe*|jefa|responsable*"
        "|director*|superior*",
        "anger": "enojad*|enfadad*|furios*|molest*|indignad*|indignante|harto|harta|hartos"
        "|cabreado*|rabia|ira|inaceptable|vergüenza|vergonzoso|ridícul*|odio|indignación"
        "|qué asco",
        "upset": "decepcion*|decepcionad*|mal|malo|mala|pésim*|horrible|terrible|fatal"
        "|no funciona|roto|rota|queja*|reclamación*|reclamo*|insatisfech*|triste"
        "|frustrad*|lamentable|desastre",
        "freebie": "compensación*|compensar|indemnizaci*|gratis|gratuito*|vale de descuento"
        "|descuento*|cupón*|tarjeta regalo|regalo*|bonificación*",
        "exposure": "redes sociales|twitter|facebook|instagram|tiktok|youtube|prensa"
        "|periodist*|medios|reseña*|una estrella|1 estrella|viral*|difundir",
        "troll": "jaja*|lol|xd|payaso*",
        "cat_defective_product": "roto|rota|rotos|averiad*|avería*|defectuos*|no funciona"
        "|dejó de funcionar|no enciende|dañad*|estropead*|calidad|fuga|gotea|rajad*|fallo*"
        "|falla*",
        "cat_out_of_stock": "sin stock|agotad*|fuera de stock|en stock|stock|no disponible"
        "|disponible*|preventa|pedido pendiente|reposición",
        "cat_delivery": "entrega*|envío*|enviado*|paquete*|mensajer*|repartidor*"
        "|transportista*|correos|seguimiento|número de seguimiento|no ha llegado|no llegó"
        "|nunca llegó|no me ha llegado|no he recibido|retraso*|dirección",
        "cat_billing_refund": "reembols*|devolución*|devolver el dinero|mi dinero|cobr*"
        "|factura*|pago*|pagué|cargo*|tarjeta|doble|dos veces|precio*|tarifa*|comisión*"
        "|recibo*",
        "cat_staff_behaviour": "maleducad*|mal educad*|grosero*|grosera*|descortés|antipátic*"
        "|atención al cliente|servicio al cliente|empleado*|empleada*|dependient*|personal"
        "|agente*|operador*|cajero*|cajera*|trato|actitud|me gritó|colgó|prepotente*"
        "|incompetent*|falta de respeto",
        "cat_lack_of_follow_up": "sin respuesta|no responden|no contestan|nadie responde"
        "|nadie contesta|ninguna respuesta|ni una respuesta|sigo esperando|todavía espero"
        "|me prometieron|prometieron|prometido|promesa*|varias veces|muchas veces"
        "|tercera vez|nunca me llamaron|no me llamaron|ignorad*|ningún seguimiento"
        "|sin noticias",
        "cat_account_access": "iniciar sesión|inicio de sesión|contraseña*|cuenta bloqueada"
        "|bloquead*|acceder|acceso|usuario|código de verificación|hackead*|mi cuenta",
    },
}

LANGUAGES = tuple(LEXICONS)
