// Switching the camera in the taxpayer's call (core/camera.ts): the button, its accessible
// name (which camera it turns to), and what is said when it fails.
import type { AreaMessages } from '@/i18n';

export default {
  'zh-CN': {
    call: {
      switchCamera: '切换摄像头',
      switchCameraTo: {
        user: '切换摄像头（改用前置摄像头）',
        environment: '切换摄像头（改用后置摄像头）',
      },
    },
    errors: {
      camera_switch: '无法切换摄像头，仍在使用原来的摄像头。',
    },
  },
  'zh-HK': {
    call: {
      switchCamera: '切換鏡頭',
      switchCameraTo: {
        user: '切換鏡頭（改用前置鏡頭）',
        environment: '切換鏡頭（改用後置鏡頭）',
      },
    },
    errors: {
      camera_switch: '未能切換鏡頭，仍在使用原來的鏡頭。',
    },
  },
  en: {
    call: {
      switchCamera: 'Switch camera',
      switchCameraTo: {
        user: 'Switch camera (to the front camera)',
        environment: 'Switch camera (to the rear camera)',
      },
    },
    errors: {
      camera_switch: 'The camera could not be switched; the call goes on with the one you had.',
    },
  },
  pt: {
    call: {
      switchCamera: 'Trocar de câmara',
      switchCameraTo: {
        user: 'Trocar de câmara (para a câmara frontal)',
        environment: 'Trocar de câmara (para a câmara traseira)',
      },
    },
    errors: {
      camera_switch: 'Não foi possível trocar de câmara; a chamada continua com a que tinha.',
    },
  },
} satisfies AreaMessages;
