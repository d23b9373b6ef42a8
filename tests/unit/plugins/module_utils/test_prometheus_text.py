# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

import pytest

from ansible_collections.llmops.vllm.plugins.module_utils import prometheus_text as pt


# ---------------------------------------------------------------- real samples

def test_v1_sample_families_and_types(v1_metrics_text):
    families = pt.parse(v1_metrics_text)
    # 92 "# TYPE" lines in the sample, and every sample belongs to one of them
    assert len(families) == 92
    assert all(family['type'] != 'untyped' for family in families.values())
    assert sum(len(family['samples']) for family in families.values()) == 430
    assert families['vllm:num_requests_running']['type'] == 'gauge'
    assert families['vllm:num_requests_running']['help'] == 'Number of requests in model execution batches.'
    assert families['vllm:prompt_tokens_total']['type'] == 'counter'
    assert families['http_request_size_bytes']['type'] == 'summary'
    assert families['vllm:time_to_first_token_seconds']['type'] == 'histogram'
    # a family order follows the text
    assert list(families)[0] == 'python_gc_objects_collected_total'


def test_v1_sample_gauge_values(v1_metrics_text):
    families = pt.parse(v1_metrics_text)
    running = families['vllm:num_requests_running']['samples']
    assert running == [{
        'name': 'vllm:num_requests_running',
        'labels': {'engine': '0', 'model_name': 'tiny'},
        'value': 0.0,
        'timestamp': None,
    }]
    assert pt.first_value(families, 'vllm:kv_cache_usage_perc', model_name='tiny') == 0.0
    assert pt.first_value(families, 'vllm:generation_tokens_total', engine=0) == 627.0
    assert pt.first_value(families, 'vllm:prompt_tokens_total') == 83.0
    assert pt.first_value(families, 'process_max_fds') == 20000.0
    # scientific notation
    assert pt.first_value(families, 'process_virtual_memory_bytes') == 2200059904.0
    assert pt.first_value(families, 'process_start_time_seconds') == pytest.approx(1.79582057042e9)


def test_v1_sample_histogram(v1_metrics_text):
    families = pt.parse(v1_metrics_text)
    family = families['vllm:request_prompt_tokens']
    assert family['type'] == 'histogram'
    names = set(sample['name'] for sample in family['samples'])
    assert names == {'vllm:request_prompt_tokens_bucket', 'vllm:request_prompt_tokens_count',
                     'vllm:request_prompt_tokens_sum'}
    # the le="1.0" bucket and the +Inf bucket
    assert pt.first_value(family, 'vllm:request_prompt_tokens_bucket', le='1.0') == 0.0
    assert pt.first_value(family, 'vllm:request_prompt_tokens_bucket', le='+Inf') == 21.0
    assert pt.first_value(family, 'vllm:request_prompt_tokens_count') == 21.0
    assert pt.first_value(family, 'vllm:request_prompt_tokens_sum') == 83.0
    bucket = pt.find_samples(family, 'vllm:request_prompt_tokens_bucket', le='1.0')[0]
    assert bucket['labels'] == {'engine': '0', 'le': '1.0', 'model_name': 'tiny'}
    # +Inf bucket equals _count on every histogram in the sample
    for family in families.values():
        if family['type'] != 'histogram':
            continue
        name = family['name']
        for inf in pt.find_samples(family, name + '_bucket', le='+Inf'):
            other = dict((k, v) for k, v in inf['labels'].items() if k != 'le')
            count = pt.first_value(family, name + '_count', **other)
            assert inf['value'] == count, name


def test_histogram_named_total_is_not_a_counter(v1_metrics_text):
    # vllm:iteration_tokens_total is a histogram whose name ends in _total
    families = pt.parse(v1_metrics_text)
    family = families['vllm:iteration_tokens_total']
    assert family['type'] == 'histogram'
    assert pt.first_value(family, 'vllm:iteration_tokens_total_bucket', le='1.0') == 7.0
    assert pt.first_value(family, 'vllm:iteration_tokens_total_sum') == 710.0
    assert 'vllm:iteration_tokens_total_bucket' not in families


def test_v1_sample_summary_and_sum_by(v1_metrics_text):
    families = pt.parse(v1_metrics_text)
    assert pt.sum_values(families, 'http_request_size_bytes_count') == 21.0
    assert pt.sum_by(families, 'vllm:request_success_total', 'finished_reason') == {
        'stop': 1.0, 'length': 20.0, 'abort': 0.0, 'error': 0.0, 'repetition': 0.0}
    assert pt.sum_values(families, 'vllm:request_success_total', model_name='tiny') == 21.0
    assert pt.sum_values(families, 'vllm:request_success_total', model_name='other') is None
    assert pt.sum_values(families, 'vllm:request_success_total', model_name='other', default=0.0) == 0.0


def test_v1_sample_long_label_set(v1_metrics_text):
    families = pt.parse(v1_metrics_text)
    labels = families['vllm:cache_config_info']['samples'][0]['labels']
    assert labels['block_size'] == '128'
    assert labels['kv_cache_dtype_skip_layers'] == '[]'
    assert labels['_block_size_resolved'] == 'True'
    assert len(labels) == 37


def test_v0_sample(v0_metrics_text):
    families = pt.parse(v0_metrics_text)
    assert len(families) == 13
    model = 'meta-llama/Llama-3.1-8B-Instruct'
    assert pt.sample_values(families, 'vllm:gpu_cache_usage_perc', model_name=model) == [0.0]
    assert pt.first_value(families, 'vllm:gpu_prefix_cache_hit_rate') == -1.0
    assert 'vllm:kv_cache_usage_perc' not in families
    assert families['vllm:cache_config_info']['samples'][0]['labels']['num_gpu_blocks'] == '2375'


# ---------------------------------------------------------------- syntax

def test_label_value_escapes():
    text = (
        '# TYPE m gauge\n'
        'm{path="C:\\\\dir\\\\file",quote="say \\"hi\\"",nl="a\\nb",plain="x"} 1\n'
    )
    labels = pt.parse(text)['m']['samples'][0]['labels']
    assert labels == {'path': 'C:\\dir\\file', 'quote': 'say "hi"', 'nl': 'a\nb', 'plain': 'x'}


def test_label_value_with_braces_commas_and_equals():
    sample = pt.parse('m{a="x,y}=z",b="#"} 2\n')['m']['samples'][0]
    assert sample['labels'] == {'a': 'x,y}=z', 'b': '#'}
    assert sample['value'] == 2.0


def test_help_escapes():
    families = pt.parse('# HELP m A \\\\ backslash\\nand a newline \\t kept\n# TYPE m counter\nm 1\n')
    assert families['m']['help'] == 'A \\ backslash\nand a newline \\t kept'


@pytest.mark.parametrize('text, expected', [
    ('+Inf', float('inf')),
    ('-Inf', float('-inf')),
    ('Inf', float('inf')),
    ('1e3', 1000.0),
    ('1.5E-3', 0.0015),
    ('-2.5e+2', -250.0),
    ('.5', 0.5),
    ('7', 7.0),
    ('-0', 0.0),
])
def test_special_and_scientific_values(text, expected):
    value = pt.parse('m %s\n' % text)['m']['samples'][0]['value']
    assert value == expected


def test_nan_value():
    value = pt.parse('m NaN\n')['m']['samples'][0]['value']
    assert math.isnan(value)


def test_timestamps():
    families = pt.parse('m{a="b"} 3 1712345678901\nn 4 -5\no 5\n')
    assert families['m']['samples'][0]['timestamp'] == 1712345678901
    assert families['n']['samples'][0]['timestamp'] == -5
    assert families['o']['samples'][0]['timestamp'] is None


def test_whitespace_trailing_comma_empty_labels_and_crlf():
    text = '# TYPE m gauge\r\n\r\n  m{ a = "1" , b="2", }\t4  \r\nn{} 5\r\n'
    families = pt.parse(text)
    assert families['m']['samples'][0]['labels'] == {'a': '1', 'b': '2'}
    assert families['m']['samples'][0]['value'] == 4.0
    assert families['n']['samples'][0]['labels'] == {}


def test_colons_in_names_and_untyped_samples():
    families = pt.parse('vllm:num_requests_running{engine="0"} 1\nlevel:metric:rate5m 2\n')
    assert families['vllm:num_requests_running']['type'] == 'untyped'
    assert families['vllm:num_requests_running']['help'] is None
    assert pt.first_value(families, 'level:metric:rate5m') == 2.0


def test_plain_comments_are_ignored():
    families = pt.parse('# just a comment\n#HELP not a help line\n# HELPER no\n# EOF\nm 1\n')
    assert list(families) == ['m']


def test_openmetrics_style_counter_name():
    families = pt.parse('# TYPE requests counter\nrequests_total 3\nrequests_created 1.7e9\n')
    assert list(families) == ['requests']
    assert pt.first_value(families, 'requests_total') == 3.0


def test_bytes_input():
    assert pt.first_value(pt.parse(b'm{x="\xc3\xa9"} 1\n'), 'm', x=u'\xe9') == 1.0


def test_helpers_on_sample_lists_and_filters():
    families = pt.parse('m{a="1",b="x"} 1\nm{a="2",b="x"} 2\nm{a="3"} 4\nother 8\n')
    samples = families['m']['samples']
    assert pt.sample_values(samples, 'm') == [1.0, 2.0, 4.0]
    assert pt.sample_values(families, 'm', b='x') == [1.0, 2.0]
    assert pt.sample_values(families, 'm', b=None) == [4.0]
    assert pt.sample_values([families['m'], families['other']], 'other') == [8.0]
    assert pt.first_value(families, 'missing') is None
    assert pt.first_value(families, 'missing', default=-1) == -1
    assert pt.sum_by(families, 'm', 'b') == {'x': 3.0, '': 4.0}
    assert pt.sample_values(families, 'm', a=2) == [2.0]


def test_empty_text():
    assert pt.parse('') == {}
    assert pt.parse('\n\n# only comments\n') == {}


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize('line, reason', [
    ('m', 'missing value'),
    ('m abc', 'invalid value'),
    ('m 1_000', 'invalid value'),
    ('m 1 2 3', 'unexpected text'),
    ('m 1 1.5', 'invalid timestamp'),
    ('m{a="1"', 'unterminated label set'),
    ('m{a="1} 2', 'unterminated value'),
    ('m{a=1} 2', 'expected a quoted value'),
    ('m{a} 2', "expected '='"),
    ('m{1a="x"} 2', 'invalid label name'),
    ('m{a="x" b="y"} 2', "expected ',' or '}'"),
    ('m{a="x",a="y"} 2', 'duplicate label'),
    ('m{a="\\q"} 2', 'invalid escape sequence'),
    ('m{a="x"}2', 'expected whitespace'),
    ('1m 2', 'invalid metric name'),
    ('# TYPE m bogus', 'unknown metric type'),
    ('# TYPE m', 'without a type'),
    ('# TYPE', 'without a metric name'),
    ('# HELP 1bad text', 'invalid metric name'),
])
def test_malformed_lines_raise_with_line_number(line, reason):
    text = '# HELP ok fine\n# TYPE ok gauge\nok 1\n' + line + '\nafter 1\n'
    with pytest.raises(ValueError) as excinfo:
        pt.parse(text)
    assert isinstance(excinfo.value, pt.PrometheusParseError)
    assert excinfo.value.lineno == 4
    message = str(excinfo.value)
    assert message.startswith('line 4: ')
    assert reason in message


def test_second_type_line_and_type_after_samples():
    with pytest.raises(ValueError, match=r"^line 3: second TYPE line for metric 'm'"):
        pt.parse('# TYPE m gauge\nm 1\n# TYPE m gauge\n')
    with pytest.raises(ValueError, match=r"^line 2: TYPE line for 'm' after its samples"):
        pt.parse('m 1\n# TYPE m gauge\n')
    with pytest.raises(ValueError, match=r"^line 2: second HELP line"):
        pt.parse('# HELP m a\n# HELP m b\n')


def test_error_in_real_sample_names_its_line(v1_metrics_text):
    lines = v1_metrics_text.split('\n')
    lines[180] = lines[180].replace(' 0.0', ' zero')   # line 181: the le="1.0" bucket
    with pytest.raises(ValueError) as excinfo:
        pt.parse('\n'.join(lines))
    assert excinfo.value.lineno == 181
    assert 'le=\\"1.0\\"' in str(excinfo.value) or 'le="1.0"' in str(excinfo.value)


def test_parse_value():
    assert pt.parse_value('+Inf') == float('inf')
    with pytest.raises(ValueError):
        pt.parse_value(' 1')
    with pytest.raises(ValueError):
        pt.parse_value('0x10')
