/* Our schemas and how a writer's bytes become a record of them: the
 * reader schemas loaded from the schema directory with the fields that
 * have a default, and the path (struct decode_path) from a writer schema:
 * read directly, or resolved against our schema projected onto the
 * writer's fields. Set up when the decoder starts or a registry id is first
 * seen, never per message. */
#include "decode/decode_int.h"

#include <avro.h>
#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int decode_schema_parse(const char *json, size_t len, avro_schema_t *schema,
                        const char *what, char *errstr, size_t errstr_size)
{
        if (avro_schema_from_json_length(json, len, schema)) {
                snprintf(errstr, errstr_size, "%s: %s", what, avro_strerror());
                return -1;
        }
        return 0;
}

int decode_schema_file(const char *path, avro_schema_t *schema, char *errstr,
                       size_t errstr_size)
{
        char *json = NULL;
        FILE *fp = fopen(path, "rb");
        long size;
        int rc = -1;

        if (!fp) {
                snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
                return -1;
        }
        if (fseek(fp, 0, SEEK_END) || (size = ftell(fp)) < 0 ||
            fseek(fp, 0, SEEK_SET)) {
                snprintf(errstr, errstr_size, "%s: cannot size", path);
                goto out;
        }
        json = malloc((size_t)size + 1);
        if (!json || fread(json, 1, (size_t)size, fp) != (size_t)size) {
                snprintf(errstr, errstr_size, "%s: cannot read", path);
                goto out;
        }
        json[size] = '\0';
        rc = decode_schema_parse(json, (size_t)size, schema, path, errstr,
                                 errstr_size);
out:
        free(json);
        fclose(fp);
        return rc;
}

/* avro-c keeps no defaults it would tell: read them from the JSON. */
static void decode_schema_defaults(struct decode_schema *ds, const char *path)
{
        json_t *root = json_load_file(path, 0, NULL);
        json_t *fields = json_object_get(root, "fields"), *field;
        size_t i;

        json_array_foreach(fields, i, field)
        {
                const char *name =
                        json_string_value(json_object_get(field, "name"));

                if (name && json_object_get(field, "default") &&
                    ds->default_cnt < DECODE_FIELDS_MAX)
                        snprintf(ds->defaults[ds->default_cnt++],
                                 sizeof(ds->defaults[0]), "%s", name);
        }
        json_decref(root);
}

static int decode_schema_has_default(const struct decode_schema *ds,
                                     const char *name)
{
        int i;

        for (i = 0; i < ds->default_cnt; i++)
                if (!strcmp(ds->defaults[i], name))
                        return 1;
        return 0;
}

int decode_schema_load(struct decode_schema *ds, const char *dir,
                       const char *file, char *errstr, size_t errstr_size)
{
        char path[2048];

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        if (decode_schema_file(path, &ds->schema, errstr, errstr_size))
                return -1;
        decode_schema_defaults(ds, path);
        ds->iface = avro_generic_class_from_schema(ds->schema);
        if (!ds->iface || avro_generic_value_new(ds->iface, &ds->value)) {
                snprintf(errstr, errstr_size, "%s: %s", path, avro_strerror());
                return -1;
        }
        ds->value_ok = 1;
        return 0;
}

void decode_schema_clear(struct decode_schema *ds)
{
        if (ds->value_ok)
                avro_value_decref(&ds->value);
        if (ds->iface)
                avro_value_iface_decref(ds->iface);
        if (ds->schema)
                avro_schema_decref(ds->schema);
}

/* avro-c 1.11.1 resolves enum values by position, not by symbol: a
 * writer listing the same symbols in another order would be read wrong.
 * Where both have a symbol it must be the same one; symbols the writer
 * adds after ours are refused per message, as unknown. */
static int decode_enum_mismatch(avro_schema_t writer, avro_schema_t ours)
{
        int i, n;

        if (avro_typeof(ours) != AVRO_ENUM)
                return 0;
        if (avro_typeof(writer) != AVRO_ENUM)
                return 0; /* resolution itself refuses that */
        n = avro_schema_enum_number_of_symbols(writer);
        if (n > avro_schema_enum_number_of_symbols(ours))
                n = avro_schema_enum_number_of_symbols(ours);
        for (i = 0; i < n; i++)
                if (strcmp(avro_schema_enum_get(writer, i),
                           avro_schema_enum_get(ours, i)))
                        return 1;
        return 0;
}

/* Ours, projected onto the fields the writer has; NULL with errstr when
 * a field the writer lacks has no default in ours. */
static avro_schema_t decode_projection(avro_schema_t writer,
                                       const struct decode_schema *reader,
                                       char *errstr, size_t errstr_size)
{
        avro_schema_t ours = reader->schema, projection;
        const char *name;
        size_t i;

        if (avro_typeof(writer) != AVRO_RECORD) {
                snprintf(errstr, errstr_size, "writer schema is not a record");
                return NULL;
        }
        projection = avro_schema_record(avro_schema_name(ours),
                                        avro_schema_namespace(ours));
        if (!projection) {
                snprintf(errstr, errstr_size, "out of memory");
                return NULL;
        }
        for (i = 0; i < avro_schema_record_size(ours); i++) {
                name = avro_schema_record_field_name(ours, (int)i);
                if (avro_schema_record_field_get_index(writer, name) >= 0) {
                        if (decode_enum_mismatch(
                                    avro_schema_record_field_get(writer, name),
                                    avro_schema_record_field_get_by_index(
                                            ours, (int)i))) {
                                snprintf(errstr, errstr_size,
                                         "field %s: the writer's enum symbols "
                                         "are not ours in our order",
                                         name);
                                avro_schema_decref(projection);
                                return NULL;
                        }
                        /* append takes its own reference */
                        avro_schema_record_field_append(
                                projection, name,
                                avro_schema_record_field_get_by_index(ours,
                                                                      (int)i));
                } else if (!decode_schema_has_default(reader, name)) {
                        snprintf(errstr, errstr_size,
                                 "writer schema lacks field %s, which has no "
                                 "default in ours",
                                 name);
                        avro_schema_decref(projection);
                        return NULL;
                }
        }
        return projection;
}

/* Takes the reference to writer. The same schema as ours reads directly;
 * another is resolved against ours (see struct decode_path), or is
 * incompatible (-1). */
int decode_path_init(struct decode_path *path, avro_schema_t writer,
                     struct decode_schema *reader, char *errstr,
                     size_t errstr_size)
{
        path->writer = writer;
        if (!(path->check = decode_check_new(writer, errstr, errstr_size)))
                return -1;
        if (avro_schema_equal(writer, reader->schema))
                return 0;
        path->projection =
                decode_projection(writer, reader, errstr, errstr_size);
        if (!path->projection)
                return -1;
        path->dest_iface = avro_generic_class_from_schema(path->projection);
        if (!path->dest_iface ||
            avro_generic_value_new(path->dest_iface, &path->dest)) {
                snprintf(errstr, errstr_size, "%s", avro_strerror());
                return -1;
        }
        path->dest_ok = 1;
        path->resolver = avro_resolved_writer_new(writer, path->projection);
        if (!path->resolver ||
            avro_resolved_writer_new_value(path->resolver, &path->resolved)) {
                snprintf(errstr, errstr_size,
                         "writer schema cannot be read as ours: %s",
                         avro_strerror());
                return -1;
        }
        path->resolved_ok = 1;
        avro_resolved_writer_set_dest(&path->resolved, &path->dest);
        return 0;
}

void decode_path_clear(struct decode_path *path)
{
        if (path->resolved_ok)
                avro_value_decref(&path->resolved);
        if (path->resolver)
                avro_value_iface_decref(path->resolver);
        if (path->dest_ok)
                avro_value_decref(&path->dest);
        if (path->dest_iface)
                avro_value_iface_decref(path->dest_iface);
        if (path->projection)
                avro_schema_decref(path->projection);
        if (path->writer)
                avro_schema_decref(path->writer);
        decode_check_destroy(path->check);
        memset(path, 0, sizeof(*path));
}
