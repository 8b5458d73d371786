/*
 * usb-first-seen: raises an alarm the first time a USB device of a watched class (storage, by
 * default) is plugged into a computer. Devices are remembered in the plugin's state, which the
 * agent keeps in its store, so "first time" holds across restarts.
 *
 * A C plugin, written against the bindings `wit-bindgen c` generates from wit/vigilo-alarms.wit.
 * No stdio: formatting through snprintf would pull in WASI imports, and a plugin has no WASI.
 *
 * Ownership, as wit-bindgen's C bindings define it: arguments passed to an export belong to the
 * export (free them); what an export returns is freed by the generated post-return code, so every
 * returned string is malloc'd (`rule_plugin_string_dup`), never a literal.
 */
#include <stdlib.h>
#include <string.h>

#include "rule_plugin.h"

#define MAX_CLASSES 8
#define MAX_TEXT 128

/* The configuration: which device classes to watch, and the alarm's risk. */
static char classes[MAX_CLASSES][MAX_TEXT] = {"mass_storage"};
static size_t class_count = 1;
static uint8_t risk = 6;

/* ---- small string helpers (no stdio) ---- */

/* A growable byte buffer for building notes and state keys. */
typedef struct {
  char *ptr;
  size_t len, cap;
} buf_t;

static void buf_put(buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = (b->len + n + 1) * 2;
    char *p = realloc(b->ptr, cap);
    if (!p) abort();
    b->ptr = p;
    b->cap = cap;
  }
  memcpy(b->ptr + b->len, s, n);
  b->len += n;
  b->ptr[b->len] = 0;
}

static void buf_str(buf_t *b, const char *s) { buf_put(b, s, strlen(s)); }

/* ---- the event's fields ---- */

/* The event's text field `f`, or NULL when it has none (the agent sends only the fields the
 * plugin reads, as a list: see `reads` in describe). */
static const rule_plugin_string_t *text(const rule_plugin_event_t *e,
                                        vigilo_alarms_types_field_t f) {
  for (size_t i = 0; i < e->fields.len; i++) {
    const vigilo_alarms_types_field_value_t *fv = &e->fields.ptr[i];
    if (fv->field == f && fv->value.tag == VIGILO_ALARMS_TYPES_VALUE_TEXT)
      return &fv->value.val.text;
  }
  return NULL;
}

/* Appends a text field, or `fallback` when the event lacks it. */
static void buf_field(buf_t *b, const rule_plugin_string_t *f, const char *fallback) {
  if (f && f->len > 0)
    buf_put(b, (const char *)f->ptr, f->len);
  else
    buf_str(b, fallback);
}

static bool field_is(const rule_plugin_string_t *f, const char *s) {
  size_t n = strlen(s);
  return f && f->len == n && memcmp(f->ptr, s, n) == 0;
}

static void log_line(vigilo_alarms_host_log_level_t level, const char *text) {
  rule_plugin_string_t s;
  rule_plugin_string_set(&s, text); /* borrowed by the import: not freed by it */
  vigilo_alarms_host_log(level, &s);
}

/* ---- configuration: a two-key subset of TOML ---- */

/* Sets `err` to `message`, quoting `len` bytes of the configuration at `at` when given. */
static bool fail_at(rule_plugin_string_t *err, const char *message, const char *at, size_t len) {
  buf_t m = {0};
  buf_str(&m, message);
  if (at) {
    buf_str(&m, " (found `");
    buf_put(&m, at, len);
    buf_str(&m, "`)");
  }
  rule_plugin_string_dup(err, m.ptr);
  free(m.ptr);
  return false;
}

static bool fail(rule_plugin_string_t *err, const char *message) {
  return fail_at(err, message, NULL, 0);
}

static const char *skip_space(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  return p;
}

/* `risk = 1..10` */
static bool parse_risk(const char *p, const char *end, rule_plugin_string_t *err) {
  int value = 0;
  size_t digits = 0;
  for (; p < end && *p >= '0' && *p <= '9' && digits < 3; p++, digits++) value = value * 10 + (*p - '0');
  p = skip_space(p, end);
  if (digits == 0 || (p < end && *p != '#') || value < 1 || value > 10)
    return fail(err, "`risk` must be a whole number from 1 to 10");
  risk = (uint8_t)value;
  return true;
}

/* `classes = ["mass_storage", "hid"]`, on one line. */
static bool parse_classes(const char *p, const char *end, rule_plugin_string_t *err) {
  static const char *expected = "`classes` must be a list of device classes on one line, "
                                "like [\"mass_storage\", \"hid\"]";
  if (p >= end || *p != '[') return fail(err, expected);
  p++;
  size_t count = 0;
  for (;;) {
    p = skip_space(p, end);
    if (p < end && *p == ']') break;
    if (p >= end || *p != '"') return fail(err, expected);
    const char *start = ++p;
    while (p < end && *p != '"') p++;
    if (p >= end) return fail(err, expected);
    size_t n = (size_t)(p - start);
    if (n == 0 || n >= MAX_TEXT) return fail(err, "`classes`: a class name is empty or too long");
    if (count == MAX_CLASSES) return fail(err, "`classes`: at most 8 classes");
    memcpy(classes[count], start, n);
    classes[count][n] = 0;
    count++;
    p = skip_space(p + 1, end);
    if (p < end && *p == ',') p++;
    else if (p < end && *p == ']') break;
    else return fail(err, expected);
  }
  if (count == 0) return fail(err, "`classes` must name at least one device class");
  class_count = count;
  return true;
}

bool exports_rule_plugin_configure(rule_plugin_string_t *config, rule_plugin_string_t *err) {
  const char *text = (const char *)config->ptr, *end = text + config->len;
  bool ok = true;
  while (ok && text < end) {
    const char *eol = memchr(text, '\n', (size_t)(end - text));
    if (!eol) eol = end;
    const char *p = skip_space(text, eol), *line_end = eol;
    while (line_end > p && (line_end[-1] == ' ' || line_end[-1] == '\r')) line_end--;
    if (p < line_end && *p != '#') {
      const char *key = p;
      while (p < line_end && *p != '=' && *p != ' ') p++;
      size_t key_len = (size_t)(p - key);
      p = skip_space(p, line_end);
      if (p >= line_end || *p != '=') {
        ok = fail_at(err, "expected `key = value`", key, (size_t)(line_end - key));
      } else {
        p = skip_space(p + 1, line_end);
        if (key_len == 4 && memcmp(key, "risk", 4) == 0)
          ok = parse_risk(p, line_end, err);
        else if (key_len == 7 && memcmp(key, "classes", 7) == 0)
          ok = parse_classes(p, line_end, err);
        else
          ok = fail_at(err, "unknown key: expected `risk` or `classes`", key, key_len);
      }
    }
    text = eol + 1;
  }
  rule_plugin_string_free(config);
  return ok;
}

void exports_rule_plugin_describe(rule_plugin_plugin_info_t *ret) {
  rule_plugin_string_dup(&ret->name, "usb-first-seen");
  rule_plugin_string_dup(&ret->version, "1.0.0");
  ret->subscribes.len = 1;
  ret->subscribes.ptr = malloc(sizeof(vigilo_alarms_types_event_kind_t));
  if (!ret->subscribes.ptr) abort();
  ret->subscribes.ptr[0] = VIGILO_ALARMS_TYPES_EVENT_KIND_USB;
  /* The fields on_event reads: the agent copies only these into the plugin. */
  static const vigilo_alarms_types_field_t reads[] = {
      VIGILO_ALARMS_TYPES_FIELD_ACTION,  VIGILO_ALARMS_TYPES_FIELD_DEVICE_CLASS,
      VIGILO_ALARMS_TYPES_FIELD_VENDOR_ID, VIGILO_ALARMS_TYPES_FIELD_PRODUCT_ID,
      VIGILO_ALARMS_TYPES_FIELD_SERIAL,  VIGILO_ALARMS_TYPES_FIELD_COMPUTER,
      VIGILO_ALARMS_TYPES_FIELD_VENDOR,  VIGILO_ALARMS_TYPES_FIELD_PRODUCT,
      VIGILO_ALARMS_TYPES_FIELD_USERNAME,
  };
  ret->reads.len = sizeof reads / sizeof reads[0];
  ret->reads.ptr = malloc(sizeof reads);
  if (!ret->reads.ptr) abort();
  memcpy(ret->reads.ptr, reads, sizeof reads);
  rule_plugin_string_dup(&ret->config_help,
                         "classes = [\"mass_storage\"]  # device classes to watch\n"
                         "risk = 6                     # the alarm's risk, 1-10");
}

/* ---- the rule ---- */

static bool watched(const rule_plugin_string_t *device_class) {
  for (size_t i = 0; i < class_count; i++)
    if (field_is(device_class, classes[i])) return true;
  return false;
}

void exports_rule_plugin_on_event(rule_plugin_event_t *event, rule_plugin_list_triggered_t *ret) {
  ret->ptr = NULL;
  ret->len = 0;
  if (!field_is(text(event, VIGILO_ALARMS_TYPES_FIELD_ACTION), "inserted") || !watched(text(event, VIGILO_ALARMS_TYPES_FIELD_DEVICE_CLASS))) {
    rule_plugin_event_free(event);
    return;
  }

  /* One key per device per computer: vendor:product:serial@computer. */
  buf_t key = {0};
  buf_field(&key, text(event, VIGILO_ALARMS_TYPES_FIELD_VENDOR_ID), "?");
  buf_str(&key, ":");
  buf_field(&key, text(event, VIGILO_ALARMS_TYPES_FIELD_PRODUCT_ID), "?");
  buf_str(&key, ":");
  buf_field(&key, text(event, VIGILO_ALARMS_TYPES_FIELD_SERIAL), "");
  buf_str(&key, "@");
  buf_field(&key, text(event, VIGILO_ALARMS_TYPES_FIELD_COMPUTER), "");
  rule_plugin_string_t state_key = {(uint8_t *)key.ptr, key.len};

  rule_plugin_list_u8_t seen;
  if (vigilo_alarms_host_state_get(&state_key, &seen)) {
    rule_plugin_list_u8_free(&seen);
  } else {
    rule_plugin_list_u8_t mark = {(uint8_t *)"1", 1};
    rule_plugin_string_t err;
    if (!vigilo_alarms_host_state_set(&state_key, &mark, &err)) {
      /* State full: still raise the alarm, and say why it may repeat. */
      log_line(VIGILO_ALARMS_HOST_LOG_LEVEL_WARN, "cannot remember this device; state is full");
      rule_plugin_string_free(&err);
    }

    buf_t note = {0};
    buf_str(&note, "first time on ");
    buf_field(&note, text(event, VIGILO_ALARMS_TYPES_FIELD_COMPUTER), "this computer");
    buf_str(&note, ": ");
    buf_field(&note, text(event, VIGILO_ALARMS_TYPES_FIELD_VENDOR), "unknown vendor");
    buf_str(&note, " ");
    buf_field(&note, text(event, VIGILO_ALARMS_TYPES_FIELD_PRODUCT), "device");
    buf_str(&note, " (serial ");
    buf_field(&note, text(event, VIGILO_ALARMS_TYPES_FIELD_SERIAL), "none");
    buf_str(&note, "), plugged in by ");
    buf_field(&note, text(event, VIGILO_ALARMS_TYPES_FIELD_USERNAME), "an unknown user");

    rule_plugin_triggered_t *alarm = calloc(1, sizeof *alarm);
    vigilo_alarms_types_action_t *popup = calloc(1, sizeof *popup);
    if (!alarm || !popup) abort();
    rule_plugin_string_dup(&alarm->alarm, "New USB device");
    alarm->risk = risk;
    popup->tag = VIGILO_ALARMS_TYPES_ACTION_POPUP;
    rule_plugin_string_dup(&popup->val.popup.title, "New USB device");
    rule_plugin_string_dup(&popup->val.popup.message,
                           "This device has not been used on this computer before. "
                           "Its use is recorded.");
    alarm->actions.ptr = popup;
    alarm->actions.len = 1;
    alarm->note.is_some = true;
    rule_plugin_string_dup_n(&alarm->note.val, note.ptr, note.len);
    free(note.ptr);
    log_line(VIGILO_ALARMS_HOST_LOG_LEVEL_INFO, "new device remembered");
    ret->ptr = alarm;
    ret->len = 1;
  }
  free(key.ptr);
  rule_plugin_event_free(event);
}
